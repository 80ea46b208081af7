// `gantry namespace set|show` and `gantry namespaces`: what an admin set for a
// namespace (the Unix user and group its jobs run as, public reads, output
// roots), through the API like every other change.
import type { Command } from 'commander';
import type { NamespaceSettings, NamespaceSettingsPatch } from '../store/types.js';
import type { CliHelpers } from './notifyCommands.js';
import { table } from './format.js';

interface SetOptions {
  user?: string | false;
  group?: string | false;
  public?: boolean;
  outputRoot?: string[];
  clearOutputRoots?: boolean;
  json?: boolean;
}

function settingsText(s: NamespaceSettings): string {
  const rows: [string, string][] = [
    ['namespace', s.namespace],
    ['user', s.user ?? '(none: jobs run as the worker)'],
    ['group', s.group ?? (s.user ? "(the user's own)" : '(none)')],
    ['public', s.public ? 'yes (anyone may read its runs, jobs, logs and events)' : 'no'],
    ['output roots', s.outputRoots.length ? s.outputRoots.join(', ') : '(not confined)'],
  ];
  return rows.map(([k, v]) => `${k.padEnd(13)} ${v}`).join('\n');
}

/** Adds `set` and `show` to the `namespace` command (made by the notify commands), and `namespaces`. */
export function registerNamespaceCommands(program: Command, h: CliHelpers): void {
  const ns = program.commands.find((c) => c.name() === 'namespace') ?? program.command('namespace').description('namespaces');
  ns.command('set')
    .description('change what a namespace runs as and who may read it (admin): fields not given keep their value')
    .argument('<namespace>')
    .option('--user <name>', 'the Unix user its jobs run as (a root worker switches to it)')
    .option('--no-user', 'clear the user (and give --no-group too, if a group is set)')
    .option('--group <name>', "the Unix group its jobs run as (default: the user's own)")
    .option('--no-group', 'clear the group')
    .option('--public', 'anyone may read its runs, jobs, logs and events without a token (acting still needs one)')
    .option('--no-public', 'reading it needs a token of the namespace again')
    .option('--output-root <dir>', 'confine its absolute outputs under this folder (repeatable; added to the roots it has)', h.collect)
    .option('--clear-output-roots', 'drop the roots it has first (alone: not confined)')
    .option('--json', 'machine-readable output')
    .action(async (namespace: string, o: SetOptions, cmd: Command) => {
      const client = h.clientOf(cmd);
      const patch: NamespaceSettingsPatch = {};
      if (o.user !== undefined) patch.user = o.user === false ? null : o.user;
      if (o.group !== undefined) patch.group = o.group === false ? null : o.group;
      if (o.public !== undefined) patch.public = o.public;
      if (o.outputRoot?.length || o.clearOutputRoots) {
        const current = o.clearOutputRoots ? [] : (await client.namespaceSettings(namespace)).outputRoots;
        patch.outputRoots = [...current, ...(o.outputRoot ?? [])];
      }
      if (Object.keys(patch).length === 0)
        throw h.usage('gantry namespace set: nothing to change (give --user, --group, --public/--no-public, --output-root or --clear-output-roots)');
      const s = await client.setNamespaceSettings(namespace, patch);
      h.print(o.json, s, () => settingsText(s));
    });
  ns.command('show')
    .description("a namespace's settings: run-as user and group, public, output roots")
    .argument('<namespace>')
    .option('--json', 'machine-readable output')
    .action(async (namespace: string, o: { json?: boolean }, cmd: Command) => {
      const s = await h.clientOf(cmd).namespaceSettings(namespace);
      h.print(o.json, s, () => settingsText(s));
    });
  ns.exitOverride();
  for (const c of ns.commands) c.exitOverride();

  program
    .command('namespaces')
    .description('the configured namespaces you may read, with their settings')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await h.clientOf(cmd).namespaces();
      h.print(o.json, r.namespaces, () =>
        table(
          ['NAMESPACE', 'USER', 'GROUP', 'PUBLIC', 'OUTPUT ROOTS'],
          r.namespaces.map((s) => [s.namespace, s.user ?? '', s.group ?? '', s.public ? 'yes' : 'no', s.outputRoots.join(',')]),
        ),
      );
    })
    .exitOverride();
}
