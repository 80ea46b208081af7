// `gantry acct` (like Grid Engine's qacct): what finished attempts used, summed
// per namespace, workflow, task or worker over a time range; a client of
// GET /api/v1/acct like every other read.
import type { Command } from 'commander';
import { ACCT_KEYS, type AcctKey, type AcctRow } from '../store/acctRows.js';
import { formatDuration } from '../spec/duration.js';
import { bytesText, cpuText, table } from './format.js';
import type { CliHelpers } from './notifyCommands.js';

const HEADERS: Record<AcctKey, string> = { namespace: 'NAMESPACE', workflow: 'WORKFLOW', task: 'TASK', worker: 'WORKER' };

export function registerAcctCommand(program: Command, h: Pick<CliHelpers, 'clientOf' | 'print' | 'usage'>): void {
  program
    .command('acct')
    .description('accounting (like qacct): attempts, succeeded/failed, wall and CPU time, max and mean peak memory of finished attempts, per group')
    .option('--since <time>', 'attempts that ended at or after: ISO 8601, epoch ms, or a duration ago (30m, 2h, 7d)')
    .option('--until <time>', 'attempts that ended before')
    .option('--by <keys>', `group by, comma-separated: ${ACCT_KEYS.join(', ')} (a task within its workflow and namespace; '' for the total only)`, 'namespace')
    .option('--namespace <ns>', 'only this namespace')
    .option('--json', 'machine-readable output')
    .action(async (o: { since?: string; until?: string; by: string; namespace?: string; json?: boolean }, cmd: Command) => {
      const bad = o.by.split(',').map((k) => k.trim()).filter((k) => k && !(ACCT_KEYS as readonly string[]).includes(k));
      if (bad.length) throw h.usage(`--by: cannot group by ${bad.map((b) => `'${b}'`).join(', ')}: use ${ACCT_KEYS.join(', ')} (comma-separated)`);
      const r = await h.clientOf(cmd).acct({ since: o.since, until: o.until, by: o.by, namespace: o.namespace });
      h.print(o.json, r, () => {
        if (r.groups.length === 0) return 'no finished attempts in this range';
        const line = (g: AcctRow, keys: string[]) => [
          ...keys,
          g.attempts,
          g.succeeded,
          g.failed,
          formatDuration(g.wallMs),
          g.measured ? cpuText(g.cpuMs) : '',
          bytesText(g.maxRssBytes),
          bytesText(g.meanRssBytes),
        ];
        const rows = r.groups.map((g) => line(g, r.by.map((k) => g[k] ?? '')));
        // the total under several groups (its first key column says so)
        if (r.groups.length > 1 && r.by.length) rows.push(line(r.total, ['TOTAL', ...r.by.slice(1).map(() => '')]));
        return table([...r.by.map((k) => HEADERS[k]), 'ATTEMPTS', 'OK', 'FAILED', 'WALL', 'CPU', 'MAXRSS', 'MEANRSS'], rows);
      });
    });
}
