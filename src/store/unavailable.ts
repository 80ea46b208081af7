// "The store cannot answer now" as opposed to "this request is wrong": the
// database unreachable, restarting or out of connections (PostgreSQL), or a
// write lock held past the busy timeout (SQLite). The API answers these 503
// with Retry-After, so clients and proxies retry instead of reporting a bug.

const PG_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300']);
const PG_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly/;

export function storeUnavailable(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const code = String((e as { code?: unknown }).code ?? '');
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return true;
  // class 08: connection exceptions
  if (PG_CODES.has(code) || /^08/.test(code)) return true;
  return PG_MESSAGES.test(String((e as { message?: unknown }).message ?? ''));
}
