// Checkpoints, end to end on both stores: a command's $GANTRY_CHECKPOINT file
// and a handler's ctx.checkpoint() are saved while the job runs and when an
// attempt fails, and the next attempt starts from them. What is checked is what
// the jobs themselves record in files and logs, and what the API shows.
import { it, expect, beforeEach, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cluster, onEveryStore, type Cluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/embedded.js';
import { MAX_CHECKPOINT_BYTES } from '../../src/store/types.js';

onEveryStore('checkpoints', (storeName) => {
  let g: Cluster;
  beforeEach(async () => {
    // a short lease: heartbeats (which pick up checkpoint files) every 500 ms
    g = await cluster(storeName, { leaseMs: 1500 });
  });
  afterEach(async () => {
    await g.close();
  });

  const lines = (rel: string) => fs.readFileSync(path.join(g.dir, rel), 'utf8').split('\n').filter((l) => l !== '');

  it('gives a failed command its $GANTRY_CHECKPOINT back on retry: the retry starts where the failed attempt stopped', async () => {
    g.write('count.yaml', `name: count
tasks:
  count:
    retries: { max: 1, delay: 0s }
    run: |
      n=$(cat "$GANTRY_CHECKPOINT" 2>/dev/null || echo 0)
      echo "attempt $GANTRY_ATTEMPT from $n" >> starts
      while [ "$n" -lt 5 ]; do
        n=$((n + 1))
        echo "$n" >> steps
        echo "$n" > "$GANTRY_CHECKPOINT"
        if [ "$n" = 3 ] && [ "$GANTRY_ATTEMPT" = 1 ]; then echo "gave up at 3" >&2; exit 1; fi
      done
`);
    expect((await g.apply('count.yaml')).status).toBe(200);
    const { body: run } = await g.startRun('count');
    expect((await g.waitRun(run.id)).state).toBe('succeeded');
    expect(lines('starts')).toEqual(['attempt 1 from 0', 'attempt 2 from 3']);
    expect(lines('steps')).toEqual(['1', '2', '3', '4', '5']); // nothing done twice
    const job = (await g.jobs(run.id)).count!;
    expect(job.attempts).toBe(2);
    expect(job.checkpoint).toBe('5\n'); // the file's text, verbatim
  });

  it('saves what a running command writes to $GANTRY_CHECKPOINT without waiting for it to end', async () => {
    g.write('slow.yaml', `name: slow
tasks:
  slow:
    run: |
      printf '{"offset": 42}' > "$GANTRY_CHECKPOINT"
      while [ ! -e gate ]; do sleep 0.05; done
`);
    expect((await g.apply('slow.yaml')).status).toBe(200);
    const { body: run } = await g.startRun('slow');
    const job = await waitFor(
      g.store,
      async () => {
        const j = (await g.jobs(run.id)).slow!;
        return j.state === 'running' && j.checkpoint !== null ? j : null;
      },
      10_000,
      'the running job to have a checkpoint',
    );
    expect(job.checkpoint).toBe('{"offset": 42}');
    g.write('gate', '');
    expect((await g.waitRun(run.id)).state).toBe('succeeded');
  });

  it('lets a handler save checkpoints with ctx.checkpoint() and resume from ctx.lastCheckpoint; an oversized one is refused', async () => {
    g.write('handlers.ts', `
interface Ctx {
  job: { attempt: number };
  lastCheckpoint: unknown;
  checkpoint(data: unknown): Promise<void>;
  log(m: string): void;
}
export async function resumable(ctx: Ctx): Promise<{ last: number }> {
  const from = (ctx.lastCheckpoint as { done: number } | null)?.done ?? 0;
  ctx.log(\`attempt \${ctx.job.attempt} from \${from}\`);
  for (let i = from + 1; i <= 4; i++) {
    ctx.log(\`step \${i}\`);
    await ctx.checkpoint({ done: i });
    if (i === 2 && ctx.job.attempt === 1) throw new Error('gave up at 2');
  }
  try {
    await ctx.checkpoint('x'.repeat(${MAX_CHECKPOINT_BYTES * 2}));
  } catch (e) {
    ctx.log(\`refused: \${(e as Error).message}\`);
  }
  return { last: (ctx.lastCheckpoint as { done: number }).done };
}
`);
    g.write('h.yaml', `name: h
tasks:
  h:
    retries: { max: 1, delay: 0s }
    handler: ./handlers.ts#resumable
`);
    expect((await g.apply('h.yaml')).status).toBe(200);
    const { body: run } = await g.startRun('h');
    expect((await g.waitRun(run.id)).state).toBe('succeeded');
    const job = (await g.jobs(run.id)).h!;
    expect(await g.stdout(job.id)).toEqual([
      'attempt 1 from 0',
      'step 1',
      'step 2',
      'attempt 2 from 2',
      'step 3',
      'step 4',
      `refused: checkpoint too large: ${MAX_CHECKPOINT_BYTES * 2 + 2} bytes of JSON, the limit is ${MAX_CHECKPOINT_BYTES}`,
    ]);
    expect(job.result).toEqual({ last: 4 });
    expect(job.checkpoint).toEqual({ done: 4 });
    const system = (await g.store.readLogs({ jobId: job.id })).filter((l) => l.stream === 'system').map((l) => l.line);
    expect(system.some((l) => l.startsWith('[gantry] checkpoint not saved: checkpoint too large'))).toBe(true);
  });
});
