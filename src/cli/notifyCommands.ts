// `gantry audit`, `gantry subscribe` / `subscriptions` / `unsubscribe`,
// `gantry deliveries` and `gantry namespace secret`: clients of the API like
// every other read and change.
import type { Command } from 'commander';
import type { GantryClient } from '../client/client.js';
import { NOTIFY_EVENTS, type DeliveryState } from '../store/types.js';
import { isNotifyEvent, parseTarget } from '../notify/targets.js';
import { table, time } from './format.js';

export interface CliHelpers {
  clientOf(cmd: Command): GantryClient;
  print(json: boolean | undefined, value: unknown, text: () => string): void;
  usage(message: string): Error;
  collect(value: string, previous?: string[]): string[];
  intOption(v: string): number;
  keyValues(list: string[] | undefined, what: string): Record<string, string>;
}

const DELIVERY_STATES: DeliveryState[] = ['pending', 'sent', 'failed'];

export function registerNotifyCommands(program: Command, h: CliHelpers): void {
  program
    .command('audit')
    .description('automatic actions taken (retries, reaped leases, stalls, restarts, takeovers, catch-up runs), with actor and reason')
    .option('--since <time>', 'at or after: epoch ms, ISO 8601, or a duration ago (30m, 2h, 7d)')
    .option('--until <time>', 'before this time')
    .option('--run <id>', 'only entries about this run', h.intOption)
    .option('--namespace <ns>', 'only this namespace')
    .option('--action <name>', 'an action (lease.reaped) or its family (lease)')
    .option('--limit <n>', 'the latest N entries', h.intOption, 100)
    .option('--json', 'machine-readable output')
    .action(async (o: { since?: string; until?: string; run?: number; namespace?: string; action?: string; limit: number; json?: boolean }, cmd: Command) => {
      if (o.limit < 1 || o.limit > 1000) throw h.usage(`--limit ${o.limit}: give 1 to 1000`);
      const r = await h.clientOf(cmd).audit({ since: o.since, until: o.until, run: o.run, namespace: o.namespace, action: o.action, limit: o.limit });
      // fetched newest first; shown in the order things happened
      const entries = [...r.entries].reverse();
      h.print(o.json, entries, () =>
        entries.length === 0
          ? 'no automatic actions recorded'
          : table(
              ['TIME', 'ACTOR', 'ACTION', 'RUN/JOB', 'REASON'],
              entries.map((e) => [time(e.at), e.actor, e.action, e.jobId ?? (e.runId !== null ? String(e.runId) : (e.subject ?? '')), e.reason]),
            ),
      );
    });

  program
    .command('subscribe')
    .description('send events of runs (and services) matching a filter to a mailto: address or a webhook URL')
    .argument('<target>', 'mailto:you@example.org, or an http(s) URL that receives signed JSON POSTs')
    .requiredOption('--on <events>', `events, comma-separated: ${NOTIFY_EVENTS.join(', ')}`)
    .option('--namespace <ns>', 'only this namespace (default: every namespace)')
    .option('--workflow <name>', 'only runs of this workflow')
    .option('--label <k=v>', 'only runs with this label (repeatable: all must match)', h.collect)
    .option('--json', 'machine-readable output')
    .action(async (target: string, o: { on: string; namespace?: string; workflow?: string; label?: string[]; json?: boolean }, cmd: Command) => {
      const events = o.on.split(',').map((e) => e.trim()).filter(Boolean);
      for (const e of events) if (!isNotifyEvent(e)) throw h.usage(`--on: '${e}' is not an event: use ${NOTIFY_EVENTS.join(', ')}`);
      if (events.length === 0) throw h.usage('--on: give at least one event');
      const t = parseTarget(target);
      if ('error' in t) throw h.usage(t.error);
      const labels = h.keyValues(o.label, 'label');
      const s = await h.clientOf(cmd).subscribe({ namespace: o.namespace, workflow: o.workflow, labels, events, target });
      h.print(o.json, s, () => `subscription ${s.id}: ${s.events.join(', ')} of ${describeFilter(s)} → ${s.target}`);
    });

  program
    .command('subscriptions')
    .description('subscriptions: who gets which events')
    .option('--namespace <ns>', 'only this namespace')
    .option('--json', 'machine-readable output')
    .action(async (o: { namespace?: string; json?: boolean }, cmd: Command) => {
      const r = await h.clientOf(cmd).subscriptions({ namespace: o.namespace });
      h.print(o.json, r.subscriptions, () =>
        table(
          ['ID', 'EVENTS', 'NAMESPACE', 'WORKFLOW', 'LABELS', 'TARGET', 'CREATED'],
          r.subscriptions.map((s) => [s.id, s.events.join(','), s.namespace ?? '*', s.workflow ?? '*', Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(' '), s.target, time(s.createdAt)]),
        ),
      );
    });

  program
    .command('unsubscribe')
    .description('remove a subscription')
    .argument('<id>', 'its id (gantry subscriptions)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      if (!/^\d+$/.test(id)) throw h.usage(`'${id}' is not a subscription id (a number)`);
      const s = await h.clientOf(cmd).unsubscribe(Number(id));
      h.print(o.json, s, () => `subscription ${s.id} removed (${s.target})`);
    });

  program
    .command('deliveries')
    .description('notifications: queued, sent and failed, with attempts and the last error')
    .option('--state <state>', DELIVERY_STATES.join(' | '))
    .option('--run <id>', 'only about this run', h.intOption)
    .option('--namespace <ns>', 'only this namespace')
    .option('--limit <n>', 'the latest N', h.intOption, 50)
    .option('--json', 'machine-readable output')
    .action(async (o: { state?: string; run?: number; namespace?: string; limit: number; json?: boolean }, cmd: Command) => {
      if (o.state !== undefined && !DELIVERY_STATES.includes(o.state as DeliveryState)) throw h.usage(`--state: '${o.state}' is not one of ${DELIVERY_STATES.join(', ')}`);
      if (o.limit < 1 || o.limit > 1000) throw h.usage(`--limit ${o.limit}: give 1 to 1000`);
      const r = await h.clientOf(cmd).deliveries({ state: o.state as DeliveryState | undefined, run: o.run, namespace: o.namespace, limit: o.limit });
      const rows = [...r.deliveries].reverse();
      h.print(o.json, rows, () =>
        table(
          ['ID', 'CREATED', 'EVENT', 'RUN', 'TARGET', 'STATE', 'ATTEMPTS', 'SENT', 'LAST ERROR'],
          rows.map((d) => [d.id, time(d.createdAt), d.event, d.runId ?? d.subject ?? '', d.target, d.state, d.attempts, time(d.sentAt), d.lastError ?? '']),
        ),
      );
    });

  const ns = program.command('namespace').description('namespaces');
  ns.command('secret')
    .description("show the namespace's webhook signing secret (made on first use); --rotate replaces it")
    .argument('<namespace>')
    .option('--rotate', 'make a new secret (give it to every receiver)')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { rotate?: boolean; json?: boolean }, cmd: Command) => {
      const s = await h.clientOf(cmd).webhookSecret(name, o.rotate ?? false);
      h.print(o.json, s, () => s.secret);
    });
}

function describeFilter(s: { namespace: string | null; workflow: string | null; labels: Record<string, string> }): string {
  const parts = [s.namespace ? `namespace ${s.namespace}` : 'every namespace'];
  if (s.workflow) parts.push(`workflow ${s.workflow}`);
  const labels = Object.entries(s.labels).map(([k, v]) => `${k}=${v}`);
  if (labels.length) parts.push(`labels ${labels.join(' ')}`);
  return parts.join(', ');
}
