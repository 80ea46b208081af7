// Process logs (not job logs): pino, JSON lines to stderr, or a short human
// format when stderr is a terminal. Components take a Logger, never a global.
import { pino } from 'pino';

export type Logger = Pick<pino.Logger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  const level = opts.level ?? process.env.GANTRY_LOG_LEVEL ?? 'info';
  return pino({ name: opts.name ?? 'gantry', level, base: undefined }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything: for tests and embedded use that did not ask for logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
