// The ETA model (src/server/eta.ts) as a pure function, on small runs whose
// answer is worked out by hand in each test.
import { describe, expect, it } from 'vitest';
import { estimateRun, type EtaInput, type EtaJob } from '../../src/server/eta.js';
import type { JobState, TaskDurationStats } from '../../src/store/types.js';

const NOW = 1_000_000_000;
const S = 1000;

function job(task: string, state: JobState, o: Partial<EtaJob> = {}): EtaJob {
  const chunk = o.chunk ?? null;
  return {
    id: chunk === null ? `1:${task}` : `1:${task}#${chunk}`,
    task,
    chunk,
    state,
    startedAt: null,
    progress: null,
    pool: null,
    runAfter: null,
    chunked: false,
    ...o,
  };
}
const stat = (key: string, p10: number, p50: number, p90: number, samples = 5, runs = 5): TaskDurationStats => ({
  key,
  samples,
  runs,
  p10Ms: p10 * S,
  p50Ms: p50 * S,
  p90Ms: p90 * S,
});
const input = (o: Partial<EtaInput>): EtaInput => ({
  now: NOW,
  runFinished: false,
  jobs: [],
  edges: [],
  history: { pastRuns: 5, tasks: [] },
  pools: new Map(),
  workerSlots: null,
  ...o,
});
const rel = (eta: { likely: number; low: number; high: number } | null) =>
  eta && { likely: (eta.likely - NOW) / S, low: (eta.low - NOW) / S, high: (eta.high - NOW) / S };

describe('estimateRun', () => {
  it('a chain a → b → c with a running for 5 s: the rest of a, then b, then c, per percentile', () => {
    const e = estimateRun(
      input({
        jobs: [job('a', 'running', { startedAt: NOW - 5 * S }), job('b', 'pending'), job('c', 'pending'), job('done', 'succeeded')],
        edges: [
          ['1:a', '1:b'],
          ['1:b', '1:c'],
          ['1:done', '1:a'],
        ],
        history: { pastRuns: 12, tasks: [stat('a', 10, 20, 30), stat('b', 60, 100, 200), stat('c', 5, 10, 20), stat('done', 1, 1, 1)] },
      }),
    );
    // likely (p50): (20−5) + 100 + 10; low (p10): (10−5) + 60 + 5; high (p90): (30−5) + 200 + 20
    expect(rel(e.eta)).toEqual({ likely: 125, low: 70, high: 245 });
    expect(e.basis).toMatchObject({ pastRuns: 12, criticalPath: ['a', 'b', 'c'], tasksWithoutHistory: [] });
  });

  it('the longest branch wins; 10 chunks in a pool of 2 slots run in 5 waves', () => {
    const chunks = Array.from({ length: 10 }, (_, i) => job('x', 'queued', { chunk: i, pool: 'db' }));
    const e = estimateRun(
      input({
        jobs: [...chunks, job('x', 'pending', { chunked: true, pool: 'db' }), job('y', 'queued'), job('end', 'pending')],
        edges: [...chunks.map((c) => [c.id, '1:x'] as const), ['1:x', '1:end'], ['1:y', '1:end']],
        history: { pastRuns: 3, tasks: [stat('x#', 30, 30, 30), stat('x', 10, 10, 10), stat('y', 100, 100, 100), stat('end', 1, 1, 1)] },
        pools: new Map([['db', 2]]),
      }),
    );
    // x#: ⌈10/2⌉ × 30 = 150, then x 10, then end 1 = 161 > y 100 + 1
    expect(rel(e.eta)).toEqual({ likely: 161, low: 161, high: 161 });
    expect(e.basis.criticalPath).toEqual(['x#', 'x', 'end']);
    // Without the pool limit the chunks run at once: y's branch is the longer one.
    const unpooled = chunks.map((c) => ({ ...c, pool: null }));
    const free = estimateRun(
      input({
        jobs: [...unpooled, job('x', 'pending', { chunked: true }), job('y', 'queued'), job('end', 'pending')],
        edges: [...chunks.map((c) => [c.id, '1:x'] as const), ['1:x', '1:end'], ['1:y', '1:end']],
        history: { pastRuns: 3, tasks: [stat('x#', 30, 30, 30), stat('x', 10, 10, 10), stat('y', 100, 100, 100), stat('end', 1, 1, 1)] },
      }),
    );
    expect(rel(free.eta)?.likely).toBe(101);
    expect(free.basis.criticalPath).toEqual(['y', 'end']);
    // The live workers' slots limit too: 3 slots → ⌈10/3⌉ = 4 waves of 30 s, then x.
    const slots = estimateRun(
      input({
        jobs: [...unpooled, job('x', 'pending', { chunked: true })],
        edges: chunks.map((c) => [c.id, '1:x'] as const),
        history: { pastRuns: 3, tasks: [stat('x#', 30, 30, 30), stat('x', 10, 10, 10)] },
        workerSlots: 3,
      }),
    );
    expect(rel(slots.eta)?.likely).toBe(130);
  });

  it('a running job that reports progress: its remaining time from the progress (likely), the range from both', () => {
    const e = estimateRun(
      input({
        jobs: [job('a', 'running', { startedAt: NOW - 40 * S, progress: 50 })],
        history: { pastRuns: 4, tasks: [stat('a', 30, 100, 200)] },
      }),
    );
    // 50 % after 40 s: 40 s more. History alone: p10 0 (30−40 < 0), p90 160.
    expect(rel(e.eta)).toEqual({ likely: 40, low: 0, high: 160 });
  });

  it('a retrying job waits out its delay first', () => {
    const e = estimateRun(
      input({
        jobs: [job('a', 'retrying', { runAfter: NOW + 30 * S })],
        history: { pastRuns: 2, tasks: [stat('a', 10, 10, 10)] },
      }),
    );
    expect(rel(e.eta)?.likely).toBe(40);
  });

  it('a split task not split yet gets as many chunks as its past runs had on average', () => {
    const e = estimateRun(
      input({
        jobs: [job('x.split', 'queued'), job('x', 'pending', { chunked: true })],
        edges: [['1:x.split', '1:x']],
        // 12 chunks over 3 runs: 4 per run; 2 worker slots: 2 waves of 30 s
        history: { pastRuns: 3, tasks: [stat('x.split', 5, 5, 5), stat('x#', 30, 30, 30, 12, 3), stat('x', 10, 10, 10)] },
        workerSlots: 2,
      }),
    );
    expect(rel(e.eta)?.likely).toBe(5 + 60 + 10);
    expect(e.basis.criticalPath).toEqual(['x.split', 'x#', 'x']);
  });

  it('a task without history counts as no time and is named; no history at all gives no ETA, not a made-up one', () => {
    const some = estimateRun(
      input({
        jobs: [job('a', 'queued'), job('new', 'pending')],
        edges: [['1:a', '1:new']],
        history: { pastRuns: 3, tasks: [stat('a', 10, 10, 10)] },
      }),
    );
    expect(rel(some.eta)?.likely).toBe(10);
    expect(some.basis.tasksWithoutHistory).toEqual(['new']);

    const none = estimateRun(input({ jobs: [job('a', 'queued'), job('b', 'pending')], history: { pastRuns: 0, tasks: [] } }));
    expect(none.eta).toBeNull();
    expect(none.basis.reason).toMatch(/no past run/);
    expect(none.basis.tasksWithoutHistory).toEqual(['a', 'b']);
  });

  it('a finished run has no ETA', () => {
    const e = estimateRun(input({ runFinished: true }));
    expect(e.eta).toBeNull();
    expect(e.basis.reason).toMatch(/ended/);
  });
});
