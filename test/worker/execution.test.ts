// Jobs as real processes and real handler functions, through the embedded
// system: commands, logs, results, timeouts, outputs and parameter quoting.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { embedded, waitFor, alive, type Embedded } from '../helpers/embedded.js';
import { startRun } from '../../src/server/runs.js';

let g: Embedded;
beforeAll(async () => {
  g = await embedded({ slots: 4, killGraceMs: 500 });
});
afterAll(async () => {
  await g.close();
});

const logsOf = async (jobId: string) => (await g.up.store.readLogs({ jobId })).filter((l) => l.stream !== 'system').map((l) => `${l.stream}:${l.line}`);

describe('commands', () => {
  it('runs shell strings and argv lists, storing exit code, duration and both output streams of every attempt', async () => {
    await g.define(
      'cmds',
      `name: cmds
tasks:
  shell:
    run: |
      echo out-line
      echo err-line >&2
      exit 0
  argv:
    run: [printf, "%s|%s\\n", "a b", "{{ run.date }}"]
  bad:
    run: echo about to fail >&2; exit 7
`,
    );
    const { run, jobs } = await g.run({ workflow: 'cmds' });
    expect(run.state).toBe('failed');
    expect(jobs.shell!.state).toBe('succeeded');
    expect(jobs.shell!.exitCode).toBe(0);
    expect(await logsOf(`${run.id}:shell`)).toEqual(['stdout:out-line', 'stderr:err-line']);
    expect(await logsOf(`${run.id}:argv`)).toEqual([`stdout:a b|${run.logicalDate}`]);
    expect(jobs.bad!.state).toBe('failed');
    expect(jobs.bad!.exitCode).toBe(7);
    expect(jobs.bad!.error).toBe('exit code 7: about to fail');
    const [attempt] = await g.up.store.listAttempts(`${run.id}:bad`);
    expect(attempt!.exitCode).toBe(7);
    expect(attempt!.finishedAt! - attempt!.startedAt).toBeGreaterThanOrEqual(0);
    expect(attempt!.pid).toBeGreaterThan(0);
  });

  it('passes a parameter full of shell syntax as one literal argument, and as GANTRY_PARAM_<NAME>', async () => {
    const evil = `x'; rm -rf "$HOME"; echo '`;
    await g.define(
      'quoting',
      `name: quoting
params: { p: { required: true } }
tasks:
  show:
    run: printf '[%s]\\n' {{ params.p }} "$#"; printf 'env=%s\\n' "$GANTRY_PARAM_P"
`,
    );
    const { run, jobs } = await g.run({ workflow: 'quoting', params: { p: evil } });
    expect(jobs.show!.state).toBe('succeeded');
    expect(await logsOf(`${run.id}:show`)).toEqual([`stdout:[${evil}]`, 'stdout:[0]', `stdout:env=${evil}`]);
  });

  it('kills the whole process tree when a job times out, and retries it', async () => {
    const pids = path.join(g.dir, 'timeout-pids');
    await g.define(
      'timeout',
      `name: timeout
tasks:
  slow:
    timeout: 1s
    retries: { max: 1, delay: 0s }
    run: |
      sh -c 'sleep 60' &
      echo $! >> ${pids}
      sleep 60
`,
    );
    const { run, jobs } = await g.run({ workflow: 'timeout' });
    expect(run.state).toBe('failed');
    expect(jobs.slow!.error).toBe('timed out after 1s');
    const attempts = await g.up.store.listAttempts(`${run.id}:slow`);
    expect(attempts.map((a) => a.state)).toEqual(['timed_out', 'timed_out']);
    const children = fs.readFileSync(pids, 'utf8').trim().split('\n').map(Number);
    expect(children).toHaveLength(2);
    for (const pid of children) expect(alive(pid)).toBe(false);
  });

  it('hands a JSON result written to $GANTRY_RESULT to downstream templates', async () => {
    await g.define(
      'results',
      `name: results
tasks:
  count:
    run: |
      echo '{"pages": 42, "wiki": "simplewiki"}' > "$GANTRY_RESULT"
  use:
    needs: [count]
    run: |
      echo pages={{ tasks.count.result.pages }} all={{ tasks.count.result }}
`,
    );
    const { run, jobs } = await g.run({ workflow: 'results' });
    expect(jobs.count!.result).toEqual({ pages: 42, wiki: 'simplewiki' });
    expect(await logsOf(`${run.id}:use`)).toEqual(['stdout:pages=42 all={"pages":42,"wiki":"simplewiki"}']);
  });

  it('fails a job whose result is not JSON, with a clear error and no retry', async () => {
    await g.define('badresult', `name: badresult\ntasks:\n  r:\n    retries: 3\n    run: |\n      echo 'not json' > "$GANTRY_RESULT"\n`);
    const { jobs } = await g.run({ workflow: 'badresult' });
    expect(jobs.r!.state).toBe('failed');
    expect(jobs.r!.attempts).toBe(1);
    expect(jobs.r!.error).toMatch(/GANTRY_RESULT is not valid JSON/);
  });
});

describe('handlers', () => {
  it('calls an exported TypeScript function with params, outputs, upstream data and a logger; its return value is the result', async () => {
    fs.writeFileSync(
      path.join(g.dir, 'handlers.ts'),
      `import fs from 'node:fs/promises';
interface Ctx { params: Record<string, unknown>; outputs: Record<string, string>; tasks: Record<string, { result: unknown }>; log(m: string): void; signal: AbortSignal }
export async function write(ctx: Ctx): Promise<{ wrote: string }> {
  const text: string = \`hello \${String(ctx.params.who)}\`;
  await fs.writeFile(ctx.outputs.greeting!, text);
  ctx.log('wrote the greeting');
  return { wrote: text };
}
export async function boom(): Promise<void> { throw new Error('handler exploded'); }
export async function upstream(ctx: Ctx) { ctx.log(JSON.stringify(ctx.tasks.write!.result)); }
`,
    );
    await g.define(
      'handlers',
      `name: handlers
params: { who: { default: ada } }
tasks:
  write:
    handler: ./handlers.ts#write
    outputs: { greeting: out/greeting.txt }
  up:
    needs: [write]
    handler: ./handlers.ts#upstream
  boom:
    handler: ./handlers.ts#boom
`,
    );
    const { run, jobs } = await g.run({ workflow: 'handlers' });
    expect(jobs.write!.state).toBe('succeeded');
    expect(jobs.write!.result).toEqual({ wrote: 'hello ada' });
    expect(fs.readFileSync(path.join(g.dir, 'out/greeting.txt'), 'utf8')).toBe('hello ada');
    expect(await logsOf(`${run.id}:write`)).toEqual(['stdout:wrote the greeting']);
    expect(await logsOf(`${run.id}:up`)).toEqual(['stdout:{"wrote":"hello ada"}']);
    expect(jobs.boom!.state).toBe('failed');
    expect(jobs.boom!.error).toBe('handler exploded');
  });
});

describe('outputs', () => {
  it('writes to a staging path while running and renames into place only on success', async () => {
    const gate = path.join(g.dir, 'gate');
    await g.define(
      'staged',
      `name: staged
tasks:
  make:
    outputs: { data: out/staged/data.txt }
    run: |
      echo partial > {{ outputs.data }}
      while [ ! -e ${gate} ]; do sleep 0.05; done
      echo complete >> {{ outputs.data }}
`,
    );
    const final = path.join(g.dir, 'out/staged/data.txt');
    const run = await startRun(g.up.store, { workflow: 'staged' });
    const stagingDirs = () => (fs.existsSync(path.join(g.dir, 'out/staged')) ? fs.readdirSync(path.join(g.dir, 'out/staged')).filter((f) => f.startsWith('.gantry-staging-')) : []);
    await waitFor(g.up.store, async () => (stagingDirs().length > 0 ? true : null), 10_000, 'staging dir');
    expect(fs.existsSync(final)).toBe(false); // nothing half-written in the final place
    fs.writeFileSync(gate, '');
    await waitFor(g.up.store, async () => ((await g.up.store.getRun(run.id))!.state === 'succeeded' ? true : null), 10_000, 'run');
    expect(fs.readFileSync(final, 'utf8')).toBe('partial\ncomplete\n');
    expect(stagingDirs()).toEqual([]);
  });

  it('deletes staged files of a failed attempt and never creates the output', async () => {
    await g.define('failout', `name: failout\ntasks:\n  make:\n    outputs: { data: out/fail/data.txt }\n    run: echo half > {{ outputs.data }}; exit 1\n`);
    const { jobs } = await g.run({ workflow: 'failout' });
    expect(jobs.make!.state).toBe('failed');
    expect(fs.existsSync(path.join(g.dir, 'out/fail/data.txt'))).toBe(false);
    expect(fs.readdirSync(path.join(g.dir, 'out/fail'))).toEqual([]);
  });

  it('fails a job that exits 0 without writing a declared output', async () => {
    await g.define('noout', `name: noout\ntasks:\n  make:\n    outputs: { data: out/none/data.txt }\n    run: "true"\n`);
    const { jobs } = await g.run({ workflow: 'noout' });
    expect(jobs.make!.state).toBe('failed');
    expect(jobs.make!.error).toMatch(/^declared output not written: data \(expected at .*\.gantry-staging/);
  });

  it('skips jobs whose outputs all exist, and --force reruns them and replaces the outputs', async () => {
    const counter = path.join(g.dir, 'skip-counter');
    await g.define(
      'skip',
      `name: skip
tasks:
  make:
    outputs: { data: out/skip/data.txt }
    run: echo run >> ${counter}; date +%s%N > {{ outputs.data }}
  after:
    needs: [make]
    run: cat {{ tasks.make.outputs.data }}
`,
    );
    const first = await g.run({ workflow: 'skip' });
    expect(first.jobs.make!.state).toBe('succeeded');
    const v1 = fs.readFileSync(path.join(g.dir, 'out/skip/data.txt'), 'utf8');
    const second = await g.run({ workflow: 'skip' });
    expect(second.run.state).toBe('succeeded');
    expect(second.jobs.make!.state).toBe('skipped');
    expect(second.jobs.make!.skipReason).toBe('outputs_exist');
    expect(second.jobs.after!.state).toBe('succeeded');
    expect(fs.readFileSync(counter, 'utf8')).toBe('run\n');
    const forced = await g.run({ workflow: 'skip', force: true });
    expect(forced.jobs.make!.state).toBe('succeeded');
    expect(fs.readFileSync(counter, 'utf8')).toBe('run\nrun\n');
    expect(fs.readFileSync(path.join(g.dir, 'out/skip/data.txt'), 'utf8')).not.toBe(v1);
  });
});

describe('cancel', () => {
  it('kills a running job and its children when its run is cancelled, and drops its staged outputs', async () => {
    const pidFile = path.join(g.dir, 'cancel-pid');
    await g.define(
      'cancelme',
      `name: cancelme
tasks:
  long:
    outputs: { data: out/cancel/data.txt }
    run: echo partial > {{ outputs.data }}; echo $$ > ${pidFile}; sleep 60
`,
    );
    const run = await startRun(g.up.store, { workflow: 'cancelme' });
    await waitFor(g.up.store, async () => (fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() ? true : null), 10_000, 'job start');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await g.up.store.cancelRun(run.id);
    await waitFor(g.up.store, async () => (alive(pid) ? null : true), 5_000, 'the job process to die');
    await waitFor(g.up.store, async () => (fs.readdirSync(path.join(g.dir, 'out/cancel')).some((f) => f.startsWith('.gantry-staging-')) ? null : true), 5_000, 'staging cleanup');
    expect(fs.existsSync(path.join(g.dir, 'out/cancel/data.txt'))).toBe(false);
    expect((await g.up.store.getJob(`${run.id}:long`))!.state).toBe('cancelled');
  });
});
