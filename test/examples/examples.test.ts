// The bundled examples are tests: each runs to success through the embedded
// system, and the dumps example produces real, verifiable files.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { embedded, type Embedded } from '../helpers/embedded.js';
import { loadDefinitions } from '../../src/spec/parse.js';

const examples = path.resolve(import.meta.dirname, '../../examples');
let g: Embedded;

beforeAll(async () => {
  g = await embedded({ slots: 2 });
  // YAML files and TypeScript workflow files (examples/sdk/*.workflow.ts) alike
  const { definitions, errors } = await loadDefinitions([examples]);
  expect(errors).toEqual([]);
  await g.up.store.putDefinitions(definitions);
});
afterAll(async () => {
  await g?.close();
});

describe('examples', () => {
  it('sdk/wordcount (TypeScript, function handlers) counts the sample text in blocks and reports the top words', async () => {
    const { run, jobs } = await g.run({ workflow: 'wordcount', params: { top: 4 } }, 60_000);
    try {
      expect(run.state).toBe('succeeded');
      // the sample's 31 lines: 2 blocks of 20
      expect((await g.up.store.listJobs({ runId: run.id })).filter((j) => j.task === 'count' && j.chunk !== null)).toHaveLength(2);
      // ties by word: the same as tr | grep -o | sort | uniq -c | sort -k1nr -k2
      expect(jobs.report!.state).toBe('succeeded');
      const lines = (await g.up.store.readLogs({ jobId: `${run.id}:report` })).filter((l) => l.stream === 'stdout').map((l) => l.line);
      expect(lines).toEqual(['top words: the=15 it=12 a=11 to=11']);
    } finally {
      fs.rmSync(path.join(examples, 'sdk', 'out', String(run.id)), { recursive: true, force: true });
    }
  });

  it('hello succeeds, and with fail=always fails in flaky but still runs its all_done summary', async () => {
    const ok = await g.run({ workflow: 'hello', params: { who: 'Ada' } });
    expect(ok.run.state).toBe('succeeded');
    const bad = await g.run({ workflow: 'hello', params: { fail: 'always' } }, 60_000);
    expect(bad.run.state).toBe('failed');
    expect(bad.jobs.flaky!.state).toBe('failed');
    expect(bad.jobs.flaky!.attempts).toBe(3);
    expect(bad.jobs.summary!.state).toBe('succeeded');
  });

  it('dumps-many runs one dumps pipeline per wiki in one run, then its index over all of them', async () => {
    const wikis = [`testa${process.pid}`, `testb${process.pid}`];
    const { run, jobs } = await g.run({ workflow: 'dumps-many', params: { wikis, pages: 300 } }, 120_000);
    try {
      expect(run.state).toBe('succeeded');
      expect(Object.keys(jobs)).toHaveLength(1 + 2 * 6);
      for (const w of wikis) {
        expect(jobs[`dump[${w}].publish`]!.result).toMatchObject({ files: 6 });
        expect(jobs.index!.startedAt!).toBeGreaterThanOrEqual(jobs[`dump[${w}].publish`]!.finishedAt!);
      }
      const lines = (await g.up.store.readLogs({ jobId: `${run.id}:index` })).filter((l) => l.stream === 'stdout').map((l) => l.line);
      expect(lines).toEqual(wikis.map((w) => `${w}: "status": "done"`));
    } finally {
      for (const w of wikis) {
        fs.rmSync(path.join(examples, 'dumps', 'out', w), { recursive: true, force: true });
        fs.rmSync(path.join(examples, 'dumps', 'out', 'public', w), { recursive: true, force: true });
      }
    }
  });

  it('dumps produces compressed dumps with matching checksums, published, and a rerun skips every stage', async () => {
    const wiki = `testwiki${process.pid}`;
    const params = { wiki, pages: 2000 };
    const first = await g.run({ workflow: 'dumps', params }, 120_000);
    expect(first.run.state).toBe('succeeded');
    const dir = path.join(examples, 'dumps', 'out', wiki, first.run.logicalDate);
    try {
      const files = fs.readdirSync(dir).sort();
      expect(files.some((f) => f.endsWith('-pages-articles.xml.bz2'))).toBe(true);
      expect(files.some((f) => f.endsWith('-stub-articles.xml.gz'))).toBe(true);
      // the checksum files verify against the real files
      const sums = files.find((f) => f.includes('md5sums'))!;
      execFileSync('md5sum', ['-c', sums], { cwd: dir });
      const articles = files.find((f) => f.endsWith('-pages-articles.xml.bz2'))!;
      const xml = execFileSync('bzip2', ['-dc', path.join(dir, articles)], { maxBuffer: 1 << 30 }).toString();
      expect((xml.match(/<page>/g) ?? []).length).toBe(2000);
      const again = await g.run({ workflow: 'dumps', params }, 60_000);
      expect(again.run.state).toBe('succeeded');
      for (const j of Object.values(again.jobs)) expect([j.task, j.state, j.skipReason]).toEqual([j.task, 'skipped', 'outputs_exist']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(path.join(examples, 'dumps', 'out', 'public', wiki), { recursive: true, force: true });
    }
  });
});
