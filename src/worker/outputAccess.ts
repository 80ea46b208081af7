// Where a job may put its outputs, checked by the worker before it stages
// them: a root worker moves a job's files into place, so it must not move them
// where the job's own user could not write (a tool writing into /etc through
// the worker), nor over a file of another user; and an admin may confine a
// namespace's outputs to roots (`gantry namespace set NS --output-root DIR`).
import fs from 'node:fs/promises';
import path from 'node:path';

/** Whether `p` is `root` or inside it (both absolute, normalized). */
export function isInside(p: string, root: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(p));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Outputs outside the namespace's roots, as an error naming them and the roots;
 * null when all are inside (or the namespace is not confined: no roots). A
 * workflow's own folder is allowed too: its relative outputs are its own.
 */
export function outputRootsError(outputs: Record<string, string>, roots: readonly string[], ownFolder: string): string | null {
  if (roots.length === 0) return null;
  const allowed = ownFolder ? [...roots, ownFolder] : [...roots];
  const bad = Object.entries(outputs).filter(([, p]) => !allowed.some((r) => isInside(p, r)));
  if (bad.length === 0) return null;
  return `output${bad.length > 1 ? 's' : ''} ${bad.map(([n, p]) => `${n} (${p})`).join(', ')} outside the roots this namespace's outputs are confined to: ${roots.join(', ')}${ownFolder ? ` (and its workflow's folder ${ownFolder})` : ''}`;
}

/** Whether the user may create entries in `st`'s folder, by its mode bits (write and search). */
function mayWriteIn(st: { uid: number; gid: number; mode: number }, user: { uid: number; groups: number[] }): boolean {
  if (user.uid === 0) return true;
  if (st.uid === user.uid) return (st.mode & 0o300) === 0o300;
  if (user.groups.includes(st.gid)) return (st.mode & 0o030) === 0o030;
  return (st.mode & 0o003) === 0o003;
}

/**
 * Refuses outputs the job's user could not write itself: the nearest existing
 * folder of each must be writable by it, and an existing output must be its
 * own (the worker's rename would otherwise replace another user's file).
 */
export async function checkOutputsWritableBy(outputs: Record<string, string>, user: { name: string; uid: number; gid: number; groups: number[] }): Promise<void> {
  for (const [name, finalPath] of Object.entries(outputs)) {
    const existing = await fs.lstat(finalPath).catch(() => null);
    if (existing && existing.uid !== user.uid)
      throw new Error(`output ${name} (${finalPath}) exists and belongs to uid ${existing.uid}, not to ${user.name}, whom this job runs as`);
    let dir = path.dirname(finalPath);
    for (;;) {
      const st = await fs.stat(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
      if (st) {
        if (!st.isDirectory()) break; // staging fails with the real cause (ENOTDIR)
        if (!mayWriteIn(st, user)) throw new Error(`output ${name} (${finalPath}): ${user.name}, whom this job runs as, may not write in ${dir}`);
        break;
      }
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
}
