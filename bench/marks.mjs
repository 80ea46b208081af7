// The W2 chain's link handler, for every system (Gantry's `handler:` and the
// peers' task functions in bench/queue-worker.js): a no-op that records when it
// started and when it was done, on CLOCK_MONOTONIC (process.hrtime), which all
// processes of the machine share, so that a hop (end of link N → start of link
// N+1) can be computed across worker processes with microsecond resolution.
//
// Where the marks go: in the process's memory (globalThis.__gantryBenchMarks,
// read directly by the bench when Gantry runs in-process); when
// GANTRY_BENCH_MARKS_DIR is set, also to <dir>/marks-<pid>.json when the process
// exits (how the bench reads them back from `gantry worker` processes). Plain
// ESM: no tsx transform is involved.
import fs from 'node:fs';
import path from 'node:path';

const marks = (globalThis.__gantryBenchMarks ??= []);
const dir = process.env.GANTRY_BENCH_MARKS_DIR;
if (dir && !globalThis.__gantryBenchMarksHooked) {
  globalThis.__gantryBenchMarksHooked = true;
  process.on('exit', () => {
    if (marks.length) fs.writeFileSync(path.join(dir, `marks-${process.pid}.json`), JSON.stringify(marks));
  });
}

/** milliseconds on the machine-wide monotonic clock, with ns resolution */
export const now = () => Number(process.hrtime.bigint()) / 1e6;

/** records link `i`: [i, start, end] */
export function mark(i, start) {
  marks.push([i, start, now()]);
}

/** Gantry's chain link: task `t<i>` of the W2 workflow. */
export async function link(ctx) {
  const start = now();
  mark(Number(ctx.job.id.slice(ctx.job.id.lastIndexOf(':t') + 2)), start);
}

/** marks recorded in this process so far (and forgets them) */
export function takeMarks() {
  return marks.splice(0, marks.length);
}
