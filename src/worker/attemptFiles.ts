// Where a command's $GANTRY_RESULT and $GANTRY_CHECKPOINT live. As the worker's
// own user: files in the temp folder, as before. Run as another user: inside a
// folder of the attempt that only that user can write (`job/`, 0700, its own),
// itself in a folder of root's (0711) that the job cannot rename or replace;
// the worker reads the files without following a symbolic link and only if
// the user owns them, so a job cannot have root read another file for it.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const TMPDIR = os.tmpdir();

export interface AttemptFiles {
  /** the attempt's folder, removed with removeAttemptFiles; null: none (files in the temp folder) */
  dir: string | null;
  result: string;
  checkpoint: string;
  /** uid the files must belong to when read; null: not checked */
  owner: number | null;
}

export async function attemptFiles(fence: number, owner: { uid: number; gid: number } | null): Promise<AttemptFiles> {
  const tag = `${fence}-${process.pid}-${Math.random().toString(36).slice(2)}`;
  if (!owner)
    return { dir: null, result: path.join(TMPDIR, `gantry-result-${tag}.json`), checkpoint: path.join(TMPDIR, `gantry-checkpoint-${tag}`), owner: null };
  const dir = await fs.mkdtemp(path.join(TMPDIR, `gantry-attempt-${fence}-`));
  await fs.chmod(dir, 0o711);
  const job = path.join(dir, 'job');
  await fs.mkdir(job, { mode: 0o700 });
  await fs.chown(job, owner.uid, owner.gid);
  return { dir, result: path.join(job, 'result.json'), checkpoint: path.join(job, 'checkpoint'), owner: owner.uid };
}

export async function removeAttemptFiles(f: AttemptFiles): Promise<void> {
  if (f.dir) await fs.rm(f.dir, { recursive: true, force: true }).catch(() => undefined);
}

/** Opens a file the job wrote for reading: never through a symbolic link, and only if `owner` (when given) owns it. */
export async function openJobFile(file: string, owner: number | null): Promise<fs.FileHandle> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new Error(`${path.basename(file)} is a symbolic link: not read`);
    throw e;
  }
  const st = await fh.stat();
  if (!st.isFile() || (owner !== null && st.uid !== owner)) {
    await fh.close();
    throw new Error(`${path.basename(file)} is not a plain file of the job's user: not read`);
  }
  return fh;
}
