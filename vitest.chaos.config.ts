// Chaos tests: real worker processes killed, paused and restarted, PostgreSQL
// restarted. They disturb everything else on the machine, so they run alone,
// one file at a time, after the rest of the suite.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    passWithNoTests: true,
  },
});
