import { describe, it, expect } from 'vitest';
import { taskProgress } from '../../src/store/taskProgress.js';
import { chunksLine, jobLine } from '../../src/cli/format.js';
import type { Job, JobState } from '../../src/store/types.js';

function job(task: string, state: JobState, o: { chunk?: number; progress?: number } = {}): Job {
  return {
    id: `7:${task}${o.chunk === undefined ? '' : `#${o.chunk}`}`,
    key: 0,
    runId: 7,
    task,
    chunk: o.chunk ?? null,
    state,
    skipReason: null,
    priority: 0,
    queue: 'default',
    queues: ['default'],
    pool: null,
    resources: { cpu: 1, memoryBytes: null, custom: {} },
    waitingReason: null,
    attempts: state === 'pending' || state === 'queued' ? 0 : 1,
    failures: 0,
    maxRetries: 0,
    worker: state === 'running' ? 'w1' : null,
    enqueuedAt: null,
    startedAt: null,
    finishedAt: null,
    runAfter: null,
    error: null,
    exitCode: null,
    outputs: {},
    result: null,
    progress: o.progress ?? null,
    force: false,
    chunked: o.chunk === undefined && task === 'articles',
    checkpoint: null,
    cpuMs: null,
    maxRssBytes: null,
  };
}

describe('task progress', () => {
  const jobs = [
    job('stubs', 'succeeded'),
    job('articles.split', 'succeeded'),
    job('articles', 'pending'),
    ...[0, 1, 2].map((i) => job('articles', 'succeeded', { chunk: i })),
    job('articles', 'running', { chunk: 3, progress: 50 }),
    job('articles', 'running', { chunk: 4 }),
    job('articles', 'failed', { chunk: 5 }),
    job('articles', 'queued', { chunk: 6 }),
    job('articles', 'queued', { chunk: 7 }),
    job('sync', 'running', { progress: 42 }),
  ];

  it('counts a split task’s chunks done / total, and how far each task is', () => {
    expect(taskProgress(jobs)).toEqual([
      { task: 'stubs', state: 'succeeded', chunks: null, progress: 100 },
      { task: 'articles.split', state: 'succeeded', chunks: null, progress: 100 },
      // 3 chunks done and one half way: 350 of 800
      { task: 'articles', state: 'pending', chunks: { done: 3, total: 8, running: 2, failed: 1 }, progress: 43 },
      { task: 'sync', state: 'running', chunks: null, progress: 42 },
    ]);
  });

  it('shows the chunks in a line of `status`, and a running job’s progress in its row', () => {
    expect(taskProgress(jobs).flatMap((t) => chunksLine(t) ?? [])).toEqual(['articles: 3/8 chunks done, 2 running, 1 failed (43%)']);
    expect(jobLine(jobs.at(-1)!)).toContain('42%');
    expect(chunksLine(taskProgress([job('articles', 'succeeded', { chunk: 0 })])[0]!)).toBe('articles: 1/1 chunks done');
  });
});
