// publish.ts: the last stage of the example `dumps` workflow (dumps.yaml).
//
// Copies every file the upstream tasks produced (the dumps and the checksum
// files) into out/public/<wiki>/<date>/, checking each one against the md5
// and sha1 lists on the way, and then writes dumpstatus.json, the file mirrors
// and bots poll to learn that a dump is complete.
//
// Order matters: the bulk files go straight to the public folder (each through
// a temporary name and a rename, so no half-copied file is ever visible under
// its real name), and dumpstatus.json is written LAST to the task's staged
// output, which Gantry moves into place only when this function has returned.
// An interrupted or failed publish therefore never looks complete, and a rerun
// simply copies again (Gantry skips the task once dumpstatus.json exists).
//
// Plain Node APIs only; the context type is declared here rather than
// imported, so this file has no dependency on Gantry itself.

import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

interface HandlerContext {
  params: Record<string, unknown>;
  /** staging paths of this task's declared outputs */
  outputs: Record<string, string>;
  /** upstream tasks, with the FINAL paths of their outputs */
  tasks: Record<string, { outputs: Record<string, string>; result: unknown }>;
  run: { id: string; date: string };
  log(msg: string): void;
  progress?(percent: number): void;
  signal: AbortSignal;
}

export interface PublishResult {
  files: number;
  bytes: number;
}

// Outputs are resolved against the workflow file's folder, which is also this
// module's folder: the public tree sits beside the other outputs, in out/public.
const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Parse an `md5sum`/`sha1sum` listing: base name -> hex digest. */
async function readSums(file: string): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    const m = /^([0-9a-f]{32,40}) [ *](.+)$/.exec(line);
    if (!m) throw new Error(`${path.basename(file)}: cannot read line '${line}'`);
    sums.set(m[2]!, m[1]!);
  }
  return sums;
}

/** Copy src to dir/name via a temporary name, hashing on the way. */
async function copyChecked(src: string, dir: string, signal: AbortSignal) {
  const name = path.basename(src);
  const tmp = path.join(dir, `.${name}.partial-${randomUUID()}`);
  const md5 = createHash('md5');
  const sha1 = createHash('sha1');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      md5.update(chunk);
      sha1.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(createReadStream(src), tap, createWriteStream(tmp, { flags: 'wx' }), { signal });
    await rename(tmp, path.join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return { name, bytes, md5: md5.digest('hex'), sha1: sha1.digest('hex') };
}

export async function publish(ctx: HandlerContext): Promise<PublishResult> {
  ctx.signal.throwIfAborted();
  const wiki = String(ctx.params.wiki ?? '');
  const date = ctx.run.date;
  if (!/^[a-z0-9_]+$/.test(wiki)) {
    throw new Error(`invalid wiki name '${wiki}': expected a database name such as simplewiki (only a-z, 0-9 and _)`);
  }
  if (!/^\d{8}$/.test(date)) throw new Error(`run date '${date}' is not YYYYMMDD`);
  const statusPath = ctx.outputs.status;
  if (!statusPath) throw new Error("the publish task must declare an output named 'status'");

  const md5File = ctx.tasks.checksums?.outputs.md5;
  const sha1File = ctx.tasks.checksums?.outputs.sha1;
  if (!md5File || !sha1File) throw new Error('publish needs the checksums task (outputs md5 and sha1)');
  const md5s = await readSums(md5File);
  const sha1s = await readSums(sha1File);
  const sumFiles = new Set([md5File, sha1File].map((f) => path.basename(f)));

  // Every output of every upstream task: the dumps and the checksum files.
  const sources: { task: string; src: string; name: string }[] = [];
  const byName = new Map<string, string>();
  for (const [task, t] of Object.entries(ctx.tasks)) {
    for (const src of Object.values(t.outputs)) {
      const name = path.basename(src);
      const other = byName.get(name);
      if (other === src) continue;
      if (other) throw new Error(`two upstream files are both named '${name}': ${other} and ${src}`);
      byName.set(name, src);
      sources.push({ task, src, name });
    }
  }
  for (const listed of md5s.keys()) {
    if (!byName.has(listed)) throw new Error(`${path.basename(md5File)} lists '${listed}', which no upstream task produced`);
  }

  const publicDir = path.join(HERE, 'out', 'public', wiki, date);
  await mkdir(publicDir, { recursive: true });
  ctx.log(`publishing ${sources.length} files to ${publicDir}`);

  const total = (await Promise.all(sources.map((s) => stat(s.src)))).reduce((n, s) => n + s.size, 0);
  const jobs: Record<string, { status: string; files: Record<string, object> }> = {};
  let bytes = 0;
  for (const { task, src, name } of sources) {
    ctx.signal.throwIfAborted();
    const copied = await copyChecked(src, publicDir, ctx.signal);
    // The checksum files are not listed in themselves; every other file must be, and match.
    if (!sumFiles.has(name)) {
      const want = { md5: md5s.get(name), sha1: sha1s.get(name) };
      if (!want.md5 || !want.sha1) throw new Error(`${name} is missing from the checksum files`);
      if (want.md5 !== copied.md5 || want.sha1 !== copied.sha1) {
        throw new Error(`${name}: checksum mismatch (md5 ${copied.md5}, expected ${want.md5})`);
      }
    }
    bytes += copied.bytes;
    (jobs[task] ??= { status: 'done', files: {} }).files[name] = {
      size: copied.bytes,
      url: `/${wiki}/${date}/${name}`,
      md5: copied.md5,
      sha1: copied.sha1,
    };
    ctx.log(`${name}: ${copied.bytes} bytes, md5 ${copied.md5}`);
    ctx.progress?.(Math.floor((bytes * 99) / Math.max(total, 1)));
  }

  // Last: the status file, through the staged output.
  ctx.signal.throwIfAborted();
  const status = {
    wiki,
    date,
    run: ctx.run.id,
    status: 'done',
    updated: new Date().toISOString(),
    jobs,
  };
  await writeFile(statusPath, JSON.stringify(status, null, 2) + '\n');
  ctx.progress?.(100);
  const result = { files: sources.length, bytes };
  ctx.log(`published ${result.files} files, ${result.bytes} bytes`);
  return result;
}
