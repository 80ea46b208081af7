// `gantry token create|list|revoke` and `gantry secret set|list|delete`.
// Tokens go through the API (admin), or straight to a store with --db: how the
// first admin token of a store whose gantry.token is lost is made. Secret
// values are read from stdin, never from argv (which `ps` shows to everyone).
import { Command } from 'commander';
import type { GantryClient } from '../client/client.js';
import { newToken } from '../auth/tokens.js';
import { ROLES, type ApiToken, type Role, type Store } from '../store/types.js';
import { table, time } from './format.js';
import { SECRET_NAME } from '../secrets/names.js';

export interface CliContext {
  clientOf(cmd: Command): GantryClient;
  /** an Error that exits 2 with this message */
  usage(message: string): Error;
  openStore(db: string): Promise<Store>;
  print(json: boolean | undefined, value: unknown, text: () => string): void;
  collect(value: string, previous?: string[]): string[];
}

const NAMESPACE = /^([A-Za-z0-9_][A-Za-z0-9_.-]*|\*)$/;

function tokenLine(t: ApiToken): (string | number)[] {
  return [t.id, t.role, t.role === 'admin' ? '*' : t.namespaces.join(','), t.name ?? '', time(t.createdAt)];
}
const TOKEN_HEADERS = ['ID', 'ROLE', 'NAMESPACES', 'NAME', 'CREATED'];

/** Runs `fn` on the store named by --db (closed after), or returns undefined without --db. */
async function onStore<T>(ctx: CliContext, db: string | undefined, fn: (store: Store) => Promise<T>): Promise<T | undefined> {
  if (db === undefined) return undefined;
  const store = await ctx.openStore(db);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const token = program.command('token').description('API tokens (admin): create, list, revoke');
  const dbHelp = 'work on this store directly (a SQLite file or postgres://…), not through the server: how to make an admin token when none is at hand';

  token
    .command('create')
    .description('create an API token, printed once on stdout (the store keeps only its hash)')
    .option('--namespace <ns>', "a namespace the token may change (repeatable; '*' for all)", ctx.collect)
    .option('--role <role>', 'admin | maintainer | viewer', 'maintainer')
    .option('--name <name>', 'who or what holds it, shown by token list')
    .option('--db <store>', dbHelp)
    .option('--json', 'machine-readable output: {"token": …, "id": …, …}')
    .action(async (o: { namespace?: string[]; role: string; name?: string; db?: string; json?: boolean }, cmd: Command) => {
      if (!ROLES.includes(o.role as Role)) throw ctx.usage(`--role: '${o.role}' is not one of ${ROLES.join(', ')}`);
      const role = o.role as Role;
      const namespaces = o.namespace ?? [];
      for (const ns of namespaces) if (!NAMESPACE.test(ns)) throw ctx.usage(`--namespace: '${ns}' is not a namespace name (letters, digits, _ . -; or '*')`);
      if (role !== 'admin' && namespaces.length === 0) throw ctx.usage(`a ${role} token needs --namespace N (repeatable; '*' for all)`);
      const created =
        (await onStore(ctx, o.db, async (store) => {
          const t = newToken({ role, namespaces, name: o.name });
          return { ...(await store.createToken(t.record)), token: t.token };
        })) ?? (await ctx.clientOf(cmd).createToken({ namespaces, role, name: o.name }));
      if (o.json) return ctx.print(true, created, () => '');
      process.stdout.write(created.token + '\n');
      const scope = created.role === 'admin' ? 'every namespace' : created.namespaces.join(', ');
      process.stderr.write(`token ${created.id}: ${created.role} of ${scope}. Shown once: keep it (gantry.token in the working directory, mode 0600, or GANTRY_TOKEN).\n`);
    });

  token
    .command('list')
    .description('API tokens, without their secrets')
    .option('--db <store>', dbHelp)
    .option('--json', 'machine-readable output')
    .action(async (o: { db?: string; json?: boolean }, cmd: Command) => {
      const tokens = (await onStore(ctx, o.db, (s) => s.listTokens())) ?? (await ctx.clientOf(cmd).tokens()).tokens;
      ctx.print(o.json, tokens, () => (tokens.length ? table(TOKEN_HEADERS, tokens.map(tokenLine)) : 'no tokens'));
    });

  token
    .command('revoke')
    .description('revoke an API token: requests presenting it are refused from now on')
    .argument('<id>', 'the token id, as token list shows it')
    .option('--db <store>', dbHelp)
    .option('--json', 'machine-readable output')
    .action(async (id: string, o: { db?: string; json?: boolean }, cmd: Command) => {
      if (!/^[0-9a-f]{12}$/.test(id)) throw ctx.usage(`'${id}' is not a token id (12 hex digits, as gantry token list shows it)`);
      const t = (await onStore(ctx, o.db, (s) => s.revokeToken(id))) ?? (await ctx.clientOf(cmd).revokeToken(id));
      ctx.print(o.json, t, () => `token ${t.id} revoked (${t.role}${t.name ? `, ${t.name}` : ''})`);
    });
  for (const c of token.commands) c.exitOverride();
  token.exitOverride();
}

/** All of stdin as text, one trailing newline dropped (what `echo value |` and a typed line add). */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('value (then Enter and Ctrl-D): ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registerSecretCommands(program: Command, ctx: CliContext): void {
  const secret = program.command('secret').description("secrets workflows read as {{ secrets.NAME }}: set, list, delete (a maintainer of the namespace, or an admin)");
  const nsOption = ['--namespace <ns>', 'the namespace it belongs to', 'default'] as const;
  const checkName = (name: string) => {
    if (!SECRET_NAME.test(name)) throw ctx.usage(`'${name}' is not a secret name (letters, digits, _ -)`);
  };

  secret
    .command('set')
    .description('set a secret: its value is read from stdin (never from the command line, which others can see), stored sealed')
    .argument('<name>')
    .option(...nsOption)
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { namespace: string; json?: boolean }, cmd: Command) => {
      checkName(name);
      const value = await readStdin();
      if (value === '') throw ctx.usage('the secret value is empty: pipe it in, e.g. `gantry secret set NAME < file`');
      const r = await ctx.clientOf(cmd).setSecret(o.namespace, name, value);
      ctx.print(o.json, r, () => `secret ${r.name} ${r.change} in namespace ${r.namespace}`);
    });

  secret
    .command('list')
    .description('secret names (never values)')
    .option('--namespace <ns>', 'only this namespace')
    .option('--json', 'machine-readable output')
    .action(async (o: { namespace?: string; json?: boolean }, cmd: Command) => {
      const { secrets } = await ctx.clientOf(cmd).secrets({ namespace: o.namespace });
      ctx.print(o.json, secrets, () => (secrets.length ? table(['NAMESPACE', 'NAME', 'UPDATED'], secrets.map((x) => [x.namespace, x.name, time(x.updatedAt)])) : 'no secrets'));
    });

  secret
    .command('delete')
    .description('delete a secret (jobs that use it then fail saying it is not set)')
    .argument('<name>')
    .option(...nsOption)
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { namespace: string; json?: boolean }, cmd: Command) => {
      checkName(name);
      const r = await ctx.clientOf(cmd).deleteSecret(o.namespace, name);
      ctx.print(o.json, r, () => `secret ${r.name} deleted from namespace ${r.namespace}`);
    });
  for (const c of secret.commands) c.exitOverride();
  secret.exitOverride();
}
