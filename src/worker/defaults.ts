// A worker's defaults, on their own so that the CLI can show them in its help
// without loading the worker (the CLI's client commands must start fast).
export const WORKER_DEFAULTS = {
  queues: ['default'],
  leaseMs: 30_000,
  killGraceMs: 5_000,
  pollMs: 2_000,
  maxResultBytes: 64 * 1024,
  maxLogBytes: 20 * 1024 * 1024,
};
