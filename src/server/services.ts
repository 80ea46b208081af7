// Services as the API shows them (GET /api/v1/services): the store's row, with
// how long the running instance has been up and what it runs, without the
// whole definition snapshot.
import type { Command } from '../spec/model.js';
import type { ServiceRow } from '../store/types.js';
import type { ServiceStatus } from './schemas.js';

/** Lines of the last exit shown with one service's status (GET services/NAME, gantry service status NAME). */
export const LAST_EXIT_LINES = 10;

export function serviceStatus(r: ServiceRow, now: number): ServiceStatus {
  const running = r.state === 'up' || r.state === 'stopping';
  return {
    namespace: r.namespace,
    name: r.name,
    desired: r.desired,
    state: r.state,
    flapping: r.flapping,
    worker: r.worker,
    host: r.host,
    pid: r.pid,
    startedAt: r.startedAt,
    uptimeMs: running && r.startedAt !== null ? Math.max(0, now - r.startedAt) : null,
    restarts: r.restarts,
    lastExit: r.lastExit,
    nextStartAt: r.nextStartAt,
    command: r.spec ? commandText(r.spec.command) : null,
    queues: r.spec?.queue ?? [],
    resources: r.spec?.resources ?? null,
    restart: r.spec?.restart ?? null,
  };
}

function commandText(c: Command): string {
  if (c.kind === 'shell') return c.script;
  if (c.kind === 'argv') return c.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  return `handler ${c.module}#${c.exportName}`;
}
