// Durations (`30s`, `1h30m`) and memory sizes (`512M`, `2Gi`) as written in
// workflow files, converted to milliseconds and bytes.

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

// `ms` must come before `m` in the alternation so `500ms` is not read as `500m` + `s`.
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

function durationError(s: string | number): Error {
  return new Error(`'${s}' is not a duration (use e.g. 30s, 10m, 6h, 2d)`);
}

/** `500ms`, `30s`, `10m`, `6h`, `2d`, `1h30m`, or `0` → milliseconds. */
export function parseDuration(s: string | number): number {
  // A bare number is ambiguous (seconds? ms?), so only zero is accepted.
  if (typeof s === 'number') {
    if (s === 0) return 0;
    throw durationError(s);
  }
  const text = s.trim();
  if (text === '0') return 0;
  if (text === '') throw durationError(s);
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const m = DURATION_PART.exec(text);
    if (!m) throw durationError(s);
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
  }
  return Math.round(total);
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
};

const MEMORY = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B?)$/i;

/** `512M`, `2G`, `2Gi`, `2GB`, `64K`, a bare number of bytes → bytes (binary multiples). */
export function parseMemory(s: string | number): number {
  const bad = () => new Error(`'${s}' is not a memory size (use e.g. 512M, 2G, 64K)`);
  if (typeof s === 'number') {
    if (!Number.isFinite(s) || s < 0) throw bad();
    return Math.round(s);
  }
  const m = MEMORY.exec(s.trim());
  if (!m) throw bad();
  const unit = m[2]!.toUpperCase();
  // `512i` or `5iB` without a multiplier is not a size anybody means.
  if (unit === '' && /i/i.test(m[3]!)) throw bad();
  return Math.round(Number(m[1]) * MEMORY_UNITS[unit]!);
}

/** Milliseconds for display: `450ms`, `12.3s`, `1h30m`, `2d3h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) {
    const tenths = Math.round(ms / 100) / 10;
    return tenths < 60 ? `${tenths}s` : '1m';
  }
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.join('');
}
