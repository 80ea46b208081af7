// Killing a job means killing its whole process tree: every job runs as the
// leader of its own process group, so one signal to -pgid reaches the shell,
// its children and their children (unless they deliberately setsid away).
import { readFileSync } from 'node:fs';
import { discardStaging } from './outputs.js';

export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}

/**
 * Whether a process exists and is not a zombie: in containers whose PID 1 does
 * not reap orphans, a dead orphan can stay a zombie indefinitely.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat[stat.lastIndexOf(')') + 2];
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/**
 * Stops what a lost attempt may have left running on this host: its process
 * group, then its staged outputs. True if processes were still there.
 */
export async function killLostAttempt(l: { fence: number; pid: number | null; outputs: Record<string, string> }): Promise<boolean> {
  const killed = l.pid !== null && processAlive(l.pid) && signalGroup(l.pid, 'SIGKILL');
  await discardStaging(l.outputs, l.fence).catch(() => undefined);
  return killed;
}
