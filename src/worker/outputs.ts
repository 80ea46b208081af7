// Output targets of one attempt. While it runs, each output is written to a
// staging path beside its final place (same filesystem, so the final move is an
// atomic rename); only a successful, still-current attempt moves them into
// place. A failed, cancelled or lost attempt's staging folder is deleted, so an
// interrupted job never leaves a half-written output behind. Each attempt has a
// folder of its own (`.gantry-staging-<fence>`, no shared parent): attempts of
// a job that overlap (a lost one still ending) never remove each other's.
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RunAs } from './jobBounds.js';
import { fileOpAsUser, switchTo } from './outputsAsUser.js';

export const STAGING_PREFIX = '.gantry-staging-';

export function stagingDirFor(finalPath: string, fence: number): string {
  return path.join(path.dirname(finalPath), `${STAGING_PREFIX}${fence}`);
}

export function stagingPathFor(finalPath: string, fence: number): string {
  return path.join(stagingDirFor(finalPath, fence), path.basename(finalPath));
}

export function allOutputsExist(outputs: Record<string, string>): boolean {
  const paths = Object.values(outputs);
  return paths.length > 0 && paths.every((p) => existsSync(p));
}

/**
 * Creates the staging folders; returns output name → staging path. `owner`:
 * the user the job runs as, who creates every folder made here (the staging
 * folder and missing parents of the output), so what it commits stays its own;
 * as that user, not as root (outputsAsUser.ts).
 */
export async function prepareStaging(outputs: Record<string, string>, fence: number, owner: RunAs | null = null): Promise<Record<string, string>> {
  const staged: Record<string, string> = {};
  const user = switchTo(owner);
  if (user) {
    await fileOpAsUser(user, 'prepare', Object.values(outputs).map((p) => stagingDirFor(p, fence)));
    for (const [name, finalPath] of Object.entries(outputs)) staged[name] = stagingPathFor(finalPath, fence);
    return staged;
  }
  for (const [name, finalPath] of Object.entries(outputs)) {
    const dir = stagingDirFor(finalPath, fence);
    const first = await fs.mkdir(dir, { recursive: true });
    if (owner && first !== undefined) {
      // from the first folder created down to the staging folder
      const rel = path.relative(first, dir);
      let p = first;
      await fs.chown(p, owner.uid, owner.gid);
      for (const part of rel ? rel.split(path.sep) : []) {
        p = path.join(p, part);
        await fs.chown(p, owner.uid, owner.gid);
      }
    }
    staged[name] = stagingPathFor(finalPath, fence);
  }
  return staged;
}

/** Names of declared outputs the attempt did not write. */
export function missingStagedOutputs(staged: Record<string, string>): string[] {
  return Object.entries(staged)
    .filter(([, p]) => !existsSync(p))
    .map(([name]) => name);
}

/** Moves every staged output into place (rename over any old version), then removes the staging folders; as `as` when given. */
export async function commitOutputs(outputs: Record<string, string>, fence: number, as: RunAs | null = null): Promise<void> {
  const user = switchTo(as);
  if (user) {
    const args = Object.values(outputs).flatMap((p) => [stagingPathFor(p, fence), p, `${stagingDirFor(p, fence)}.old`]);
    await fileOpAsUser(user, 'commit', args);
    return discardStaging(outputs, fence, user);
  }
  for (const finalPath of Object.values(outputs)) {
    await fs.mkdir(path.dirname(finalPath), { recursive: true });
    const staged = stagingPathFor(finalPath, fence);
    // A directory output replacing an old directory cannot be renamed over it: move the old one aside first.
    const old = await fs.stat(finalPath).catch(() => null);
    if (old?.isDirectory()) {
      const aside = `${stagingDirFor(finalPath, fence)}.old`;
      await fs.rename(finalPath, aside);
      await fs.rename(staged, finalPath);
      await fs.rm(aside, { recursive: true, force: true });
    } else {
      await fs.rename(staged, finalPath);
    }
  }
  await discardStaging(outputs, fence);
}

/** Deletes the attempt's staging folders; as `as` when given (a root rm through the job's folders would follow its swaps). */
export async function discardStaging(outputs: Record<string, string>, fence: number, as: RunAs | null = null): Promise<void> {
  const user = switchTo(as);
  if (user) return fileOpAsUser(user, 'discard', Object.values(outputs).map((p) => stagingDirFor(p, fence)));
  for (const finalPath of Object.values(outputs)) await fs.rm(stagingDirFor(finalPath, fence), { recursive: true, force: true });
}

/**
 * `gantry cancel --clean`: deletes what a cancelled attempt left at its outputs'
 * final paths (a command that wrote there directly, not to its staging path).
 * Only called for attempts that were cancelled while running: a completed job's
 * outputs are never touched.
 */
export async function removeFinalOutputs(outputs: Record<string, string>, as: RunAs | null = null): Promise<string[]> {
  const removed: string[] = [];
  for (const finalPath of Object.values(outputs)) {
    if (!existsSync(finalPath)) continue;
    const user = switchTo(as);
    if (user) await fileOpAsUser(user, 'discard', [finalPath]);
    else await fs.rm(finalPath, { recursive: true, force: true });
    removed.push(finalPath);
  }
  return removed;
}
