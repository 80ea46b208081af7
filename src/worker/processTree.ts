// Killing a job means killing its whole process tree: every job runs as the
// leader of its own process group, so one signal to -pgid reaches the shell,
// its children and their children (unless they deliberately setsid away).

export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
