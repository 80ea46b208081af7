// `gantry token create|list|revoke` and `gantry secret set|list|delete`.
// Tokens go through the API (admin), or straight to a store with --db: how the
// first admin token of a store whose gantry.token is lost is made. Secret
// values are read from stdin, never from argv (which `ps` shows to everyone).
import { Command } from 'commander';
import type { GantryClient } from '../client/client.js';
import { newToken } from '../auth/tokens.js';
import { ROLES, type ApiToken, type Role, type Store } from '../store/types.js';
import { table, time } from './format.js';

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
