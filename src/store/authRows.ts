// Token and secret rows as both stores read them, turned into the Store's types.
import type { ApiToken, Role, SecretInfo } from './types.js';

export interface TokenRowDb {
  id: string;
  hash: string;
  role: string;
  name: string | null;
  created_at: number | string;
}
export interface TokenNamespaceRowDb {
  token_id: string;
  namespace: string;
}
export interface SecretRowDb {
  namespace: string;
  name: string;
  updated_at: number | string;
}

/** Tokens with their namespaces (sorted), in the order of `rows`. */
export function toTokens(rows: TokenRowDb[], namespaces: TokenNamespaceRowDb[]): (ApiToken & { hash: string })[] {
  const byToken = new Map<string, string[]>();
  for (const n of namespaces) {
    const list = byToken.get(n.token_id) ?? [];
    list.push(n.namespace);
    byToken.set(n.token_id, list);
  }
  return rows.map((r) => ({
    id: r.id,
    hash: r.hash,
    role: r.role as Role,
    namespaces: (byToken.get(r.id) ?? []).sort(),
    name: r.name,
    createdAt: Number(r.created_at),
  }));
}

/** A token as listed: without its hash. */
export function publicToken({ hash: _hash, ...token }: ApiToken & { hash: string }): ApiToken {
  return token;
}

export function toSecretInfo(r: SecretRowDb): SecretInfo {
  return { namespace: r.namespace, name: r.name, updatedAt: Number(r.updated_at) };
}
