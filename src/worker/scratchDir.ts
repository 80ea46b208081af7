// A fresh folder for a job or service that has no folder of its own (`gantry
// exec`, a service applied without a file): it never starts in the worker's or
// the server's working directory, where the grid's state (token, secret key,
// SQLite file) may be. Created private (0700) and owned by the user the job
// runs as; removed, whatever is in it, when the job ends.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** read once: os.tmpdir() reads the environment each call */
const TMPDIR = os.tmpdir();

export async function makeScratchDir(label: string, owner: { uid: number; gid: number } | null = null): Promise<string> {
  const dir = await fs.mkdtemp(path.join(TMPDIR, `gantry-${label.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  if (owner) await fs.chown(dir, owner.uid, owner.gid);
  return dir;
}

export async function removeScratchDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
