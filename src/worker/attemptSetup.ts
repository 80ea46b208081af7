// What the worker prepares before an attempt runs, and removes after it: who it
// runs as (runAs.ts), whether its outputs may go where they are declared
// (outputAccess.ts), their staging folders (owned by that user), a scratch
// folder for a job with no folder of its own, and the files of
// $GANTRY_RESULT and $GANTRY_CHECKPOINT. A failure is the attempt's: it fails
// with its real cause (retryable or not), never left running.
import { NO_FOLDER } from '../spec/model.js';
import { attemptFiles, removeAttemptFiles, type AttemptFiles } from './attemptFiles.js';
import { checkOutputsWritableBy, outputRootsError } from './outputAccess.js';
import { discardStaging, prepareStaging } from './outputs.js';
import { RunAsError, type RunAsPolicy, type UnixUser } from './runAs.js';
import { makeScratchDir, removeScratchDir } from './scratchDir.js';

export interface AttemptSetup {
  /** the user it runs as; null: the worker's own */
  user: UnixUser | null;
  /** a line for the job's log (it runs as root because its namespace is mapped to no user) */
  warning: string | null;
  /** output name → staging path */
  staged: Record<string, string>;
  /** where it runs when it has no folder of its own */
  scratch: string | null;
  files: AttemptFiles;
}

export type SetupResult = { ok: AttemptSetup } | { error: string; retryable: boolean };

export async function setUpAttempt(o: {
  fence: number;
  outputs: Record<string, string>;
  kind: 'shell' | 'argv' | 'handler';
  /** the workflow's folder (NO_FOLDER: none) */
  baseDir: string;
  /** the namespace of the workflow the task is written in */
  namespace: string;
  policy: RunAsPolicy;
}): Promise<SetupResult> {
  let user: UnixUser | null;
  let warning: string | null;
  let roots: string[];
  try {
    ({ user, warning } = await o.policy.decide(o.namespace));
    roots = await o.policy.outputRoots(o.namespace);
  } catch (e) {
    if (e instanceof RunAsError) return { error: e.message, retryable: true };
    throw e;
  }
  const confined = outputRootsError(o.outputs, roots, o.baseDir);
  if (confined) return { error: confined, retryable: false };
  if (user) {
    try {
      await checkOutputsWritableBy(o.outputs, user);
    } catch (e) {
      return { error: (e as Error).message, retryable: false };
    }
  }
  const owner = user ? { uid: user.uid, gid: user.gid } : null;
  let staged: Record<string, string> = {};
  let scratch: string | null = null;
  try {
    staged = await prepareStaging(o.outputs, o.fence, user);
    if (o.kind !== 'handler' && o.baseDir === NO_FOLDER) scratch = await makeScratchDir(`job-${o.fence}`, owner);
    const files = await attemptFiles(o.fence, owner);
    return { ok: { user, warning, staged, scratch, files } };
  } catch (e) {
    await discardStaging(o.outputs, o.fence, user).catch(() => undefined);
    if (scratch) await removeScratchDir(scratch);
    return { error: `cannot prepare its outputs: ${(e as Error).message}`, retryable: true };
  }
}

/** Removes what setUpAttempt made for the attempt alone (its staging is committed or discarded by the worker). */
export async function tearDownAttempt(s: AttemptSetup): Promise<void> {
  if (s.scratch) await removeScratchDir(s.scratch);
  await removeAttemptFiles(s.files);
}
