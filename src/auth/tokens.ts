// API tokens: `gantry_<id>_<secret>`, 48 random bits of public id (the lookup
// key, also what `gantry token revoke` takes) and 256 random bits of secret.
// The store keeps only the SHA-256 of the whole text: a salted slow hash buys
// nothing for a random 256-bit secret (no dictionary to try), and SHA-256 keeps
// each request's check to microseconds. The presented hash is compared with the
// stored one in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ALL_NAMESPACES, type ApiToken, type NewApiToken, type Role, type Store } from '../store/types.js';

const TOKEN_TEXT = /^gantry_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A fresh token: its text (shown once, to its holder) and what the store keeps. */
export function newToken(o: { role: Role; namespaces: string[]; name?: string | null }): { token: string; record: NewApiToken } {
  const id = randomBytes(6).toString('hex');
  const token = `gantry_${id}_${randomBytes(32).toString('base64url')}`;
  // an admin acts in every namespace: listing some would suggest otherwise
  const namespaces = o.role === 'admin' ? [ALL_NAMESPACES] : [...new Set(o.namespaces)].sort();
  return { token, record: { id, hash: hashToken(token), role: o.role, namespaces, name: o.name ?? null } };
}

/** The token a request presents, checked against the store; null when it is not one (malformed, unknown, revoked). */
export async function verifyToken(store: Store, token: string): Promise<ApiToken | null> {
  const m = TOKEN_TEXT.exec(token.trim());
  if (!m) return null;
  const stored = await store.findToken(m[1]!);
  if (!stored) return null;
  const presented = Buffer.from(hashToken(token.trim()), 'hex');
  const expected = Buffer.from(stored.hash, 'hex');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return null;
  const { hash: _hash, ...token_ } = stored;
  return token_;
}

/** Whether a token may change things in `namespace`: admin anywhere, a maintainer in its namespaces, a viewer nowhere. */
export function mayChange(token: Pick<ApiToken, 'role' | 'namespaces'>, namespace: string): boolean {
  if (token.role === 'admin') return true;
  if (token.role !== 'maintainer') return false;
  return token.namespaces.includes(ALL_NAMESPACES) || token.namespaces.includes(namespace);
}

/** Whether a token may see and follow `namespace` (subscribe to it): admin anywhere, a maintainer or viewer in its namespaces. */
export function mayView(token: Pick<ApiToken, 'role' | 'namespaces'>, namespace: string): boolean {
  return token.role === 'admin' || token.namespaces.includes(ALL_NAMESPACES) || token.namespaces.includes(namespace);
}
