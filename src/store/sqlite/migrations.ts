// Numbered, append-only schema migrations for the SQLite store. Never edit a
// released step: add a new one. The runner applies them inside BEGIN IMMEDIATE,
// so two processes opening one file at once cannot both migrate.
import type Database from 'better-sqlite3';

export const SQLITE_MIGRATIONS: readonly string[] = [
  // 1: the core state machine
  `
  CREATE TABLE definitions (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, name, kind)
  );

  CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    workflow TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    labels TEXT NOT NULL,
    priority INTEGER NOT NULL,
    force INTEGER NOT NULL,
    logical_date TEXT NOT NULL,
    max_active INTEGER,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX runs_by_workflow ON runs (namespace, workflow, state, id);
  CREATE INDEX runs_by_state ON runs (state, id);

  CREATE TABLE run_labels (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
  );
  CREATE INDEX run_labels_by_value ON run_labels (key, value, run_id);

  -- Runnable rows stay small; what the UI reads about history lives in attempts/logs.
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    chunk INTEGER,
    state TEXT NOT NULL,
    skip_reason TEXT,
    trigger_rule TEXT NOT NULL,
    deps_total INTEGER NOT NULL,
    deps_ok INTEGER NOT NULL DEFAULT 0,
    deps_bad INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL,
    queue TEXT NOT NULL,
    pool TEXT,
    enqueued_at INTEGER,
    run_after INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL,
    retry_delay_ms INTEGER NOT NULL,
    retry_backoff REAL NOT NULL,
    retry_max_delay_ms INTEGER NOT NULL,
    force INTEGER NOT NULL DEFAULT 0,
    fence INTEGER,
    worker TEXT,
    lease_until INTEGER,
    outputs TEXT NOT NULL,
    refs TEXT NOT NULL,
    result TEXT,
    progress REAL,
    started_at INTEGER,
    finished_at INTEGER,
    error TEXT,
    exit_code INTEGER
  );
  CREATE UNIQUE INDEX jobs_by_task ON jobs (run_id, task, ifnull(chunk, -1));
  -- A claim is a range scan of this partial index: queued rows only, in claim order.
  CREATE INDEX jobs_claimable ON jobs (queue, priority DESC, enqueued_at, id) WHERE state = 'queued';
  CREATE INDEX jobs_active_by_run ON jobs (run_id) WHERE state IN ('pending', 'queued', 'running', 'retrying');
  CREATE UNIQUE INDEX jobs_by_fence ON jobs (fence) WHERE fence IS NOT NULL;
  CREATE INDEX jobs_leases ON jobs (lease_until) WHERE state = 'running';
  CREATE INDEX jobs_retrying ON jobs (run_after) WHERE state = 'retrying';
  CREATE INDEX jobs_by_worker ON jobs (worker, state);

  CREATE TABLE job_deps (
    upstream_id INTEGER NOT NULL,
    job_id INTEGER NOT NULL,
    PRIMARY KEY (upstream_id, job_id)
  ) WITHOUT ROWID;

  -- AUTOINCREMENT: an attempt id is the fencing token and must never be reused.
  CREATE TABLE attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    worker TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER,
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    exit_code INTEGER,
    error TEXT
  );
  CREATE INDEX attempts_by_job ON attempts (job_id, id);

  CREATE TABLE logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    job_id INTEGER NOT NULL,
    attempt_id INTEGER NOT NULL,
    stream TEXT NOT NULL,
    ts INTEGER NOT NULL,
    line TEXT NOT NULL
  );
  CREATE INDEX logs_by_job ON logs (job_id, id);
  CREATE INDEX logs_by_run ON logs (run_id, id);

  CREATE TABLE workers (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    slots INTEGER NOT NULL,
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
  );

  -- Outbox: every run/job state change, for event streams and notifiers.
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    job_id INTEGER,
    state TEXT NOT NULL
  );
  CREATE INDEX events_by_run ON events (run_id, id);
  `,
  // 2: resources, queue preference lists, pools, scheduler leadership
  `
  ALTER TABLE jobs ADD COLUMN queues TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE jobs ADD COLUMN has_fallback INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE jobs ADD COLUMN cpu REAL NOT NULL DEFAULT 1;
  ALTER TABLE jobs ADD COLUMN memory INTEGER;
  ALTER TABLE jobs ADD COLUMN resources TEXT NOT NULL DEFAULT '{}';
  ALTER TABLE jobs ADD COLUMN waiting_reason TEXT;
  -- jobs that later queues may take as a fallback, in claim order
  CREATE INDEX jobs_fallback ON jobs (priority DESC, enqueued_at, id) WHERE state = 'queued' AND has_fallback = 1;
  CREATE INDEX jobs_running_by_pool ON jobs (pool) WHERE state = 'running';

  ALTER TABLE workers ADD COLUMN cpu REAL NOT NULL DEFAULT 0;
  ALTER TABLE workers ADD COLUMN memory INTEGER;
  ALTER TABLE workers ADD COLUMN resources TEXT NOT NULL DEFAULT '{}';

  CREATE TABLE pools (
    name TEXT PRIMARY KEY,
    slots INTEGER,
    updated_at INTEGER NOT NULL
  );

  -- one row per role (the scheduler): who leads, and until when unless renewed
  CREATE TABLE leaders (
    role TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until INTEGER NOT NULL
  );
  `,
  // 3: split/combine (a chunk's element, the task's concurrency, the combine
  // row) and checkpoints; a job with a checkpoint is claimed before fresh jobs
  // of its priority (\`resume\` in the claim order).
  `
  ALTER TABLE jobs ADD COLUMN chunk_value TEXT;
  ALTER TABLE jobs ADD COLUMN chunk_limit INTEGER;
  ALTER TABLE jobs ADD COLUMN chunked INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE jobs ADD COLUMN checkpoint TEXT;
  ALTER TABLE jobs ADD COLUMN resume INTEGER NOT NULL DEFAULT 0;
  DROP INDEX jobs_claimable;
  CREATE INDEX jobs_claimable ON jobs (queue, priority DESC, resume DESC, enqueued_at, id) WHERE state = 'queued';
  DROP INDEX jobs_fallback;
  CREATE INDEX jobs_fallback ON jobs (priority DESC, resume DESC, enqueued_at, id) WHERE state = 'queued' AND has_fallback = 1;
  -- a task's chunks running now, for its \`concurrency\`
  CREATE INDEX jobs_running_chunks ON jobs (run_id, task) WHERE state = 'running' AND chunk IS NOT NULL;
  `,
  // 4: schedules. A tick's row is its unique key: written in the transaction
  // that creates its run, so one tick starts one run whatever the number of
  // schedulers. The mark is the last tick acted on per schedule (where a pass
  // resumes, and older ticks are refused). Deferred runs (`run --at`) are
  // pending start records, not runs.
  `
  CREATE TABLE schedule_ticks (
    namespace TEXT NOT NULL,
    workflow TEXT NOT NULL,
    schedule TEXT NOT NULL,
    tick INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    run_id INTEGER,
    reason TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, workflow, schedule, tick)
  );
  CREATE INDEX schedule_ticks_by_run ON schedule_ticks (run_id) WHERE run_id IS NOT NULL;
  CREATE TABLE schedule_marks (
    namespace TEXT NOT NULL,
    workflow TEXT NOT NULL,
    schedule TEXT NOT NULL,
    last_tick INTEGER NOT NULL,
    PRIMARY KEY (namespace, workflow, schedule)
  );
  CREATE TABLE deferred_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    workflow TEXT NOT NULL,
    params TEXT NOT NULL,
    labels TEXT NOT NULL,
    priority INTEGER NOT NULL,
    force INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    run_id INTEGER,
    error TEXT
  );
  CREATE INDEX deferred_runs_waiting ON deferred_runs (due_at, id) WHERE state = 'waiting';
  `,
  // graceful worker stops (gantry drain / stop [--terminate]) and cancel --clean
  `
  ALTER TABLE workers ADD COLUMN stop_mode TEXT;
  ALTER TABLE attempts ADD COLUMN clean INTEGER NOT NULL DEFAULT 0;
  `,
  // the audit log: automatic actions (retries, reaped leases, stalls, service
  // restarts, leader takeovers, catch-up runs), each written in the transaction
  // of the transition it records (src/store/audit.ts)
  `
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    namespace TEXT,
    run_id INTEGER,
    job_id TEXT,
    subject TEXT,
    details TEXT
  );
  CREATE INDEX audit_by_at ON audit (at, id);
  CREATE INDEX audit_by_run ON audit (run_id, id) WHERE run_id IS NOT NULL;
  `,
  // A job's stage: its task id with every foreach item as \`[*]\` (gantry_stage(), a function
  // the store registers), so that the status of a run of 100,000 jobs is a covering scan of
  // one index grouped by stage, and its counts by state one as well. Replaces the index of a
  // run's active jobs: (run_id, state) serves those lookups too.
  `
  ALTER TABLE jobs ADD COLUMN stage TEXT NOT NULL DEFAULT '';
  UPDATE jobs SET stage = gantry_stage(task);
  DROP INDEX jobs_active_by_run;
  CREATE INDEX jobs_by_run_state ON jobs (run_id, state, stage, chunk);
  `,
  // the web UI's overview: failures of the last 24 h and jobs finished per minute, without a scan of every job
  `
  CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('succeeded', 'failed');
  `,
  // services (SPEC §2 service files): one row per started service, desired state and its one instance
  // (see ServiceState in src/store/types.ts); service state changes in the outbox name their service in `subject`
  `
  CREATE TABLE services (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT,
    desired TEXT NOT NULL,
    state TEXT NOT NULL,
    flapping INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    host TEXT,
    pid INTEGER,
    fence INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    started_at INTEGER,
    restarts INTEGER NOT NULL DEFAULT 0,
    quick_deaths INTEGER NOT NULL DEFAULT 0,
    last_exit_code INTEGER,
    last_exit_signal TEXT,
    last_exit_at INTEGER,
    last_exit_reason TEXT,
    next_start_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
  );
  ALTER TABLE events ADD COLUMN subject TEXT;
  `,
  // auth: API tokens, kept only as the SHA-256 of the token (its public id is
  // the lookup key), each with its role and the namespaces it may act in ('*':
  // all); secrets referenced by workflows, sealed with AES-256-GCM by a key
  // that is not in the store.
  `
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE api_token_namespaces (
    token_id TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    namespace TEXT NOT NULL,
    PRIMARY KEY (token_id, namespace)
  );
  CREATE TABLE secrets (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
  );
  `,
  // notifications: subscriptions, the deliveries queue (one row per event and
  // target, so a new leader never sends again what was sent), where the notify
  // duty has read the outbox and the audit log up to (history before this
  // migration is not notified), and each namespace's webhook signing secret
  `
  CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT,
    workflow TEXT,
    labels TEXT NOT NULL,
    events TEXT NOT NULL,
    target TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT
  );
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key TEXT NOT NULL,
    event TEXT NOT NULL,
    target TEXT NOT NULL,
    namespace TEXT,
    run_id INTEGER,
    subject TEXT,
    source TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    UNIQUE (event_key, target)
  );
  CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'pending';
  CREATE INDEX deliveries_by_run ON deliveries (run_id, id) WHERE run_id IS NOT NULL;
  CREATE TABLE notify_cursors (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
  );
  INSERT INTO notify_cursors (name, position) SELECT 'events', coalesce(max(id), 0) FROM events;
  INSERT INTO notify_cursors (name, position) SELECT 'audit', coalesce(max(id), 0) FROM audit;
  CREATE TABLE webhook_secrets (
    namespace TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  `,
  // service output (gantry service logs): the lines of each instance of a service (its
  // fencing token, one per start or restart), kept as a bounded tail: the last
  // SERVICE_LOG_INSTANCES instances, each up to SERVICE_LOG_INSTANCE_BYTES (its oldest lines
  // dropped first; see src/store/serviceRows.ts). log_bytes: what the current instance holds;
  // last_exit_instance: the instance the last exit was of (its last lines in gantry service status)
  `
  CREATE TABLE service_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    instance INTEGER NOT NULL,
    stream TEXT NOT NULL,
    ts INTEGER NOT NULL,
    line TEXT NOT NULL,
    bytes INTEGER NOT NULL
  );
  CREATE INDEX service_logs_by_instance ON service_logs (namespace, name, instance, id);
  ALTER TABLE services ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE services ADD COLUMN last_exit_instance INTEGER;
  `,
  // worker and service events in the outbox (SPEC §4 "every state change"): a service's
  // namespace (what a namespace filter matches; run events are filtered through their run)
  // and what the event says beyond its state, as JSON (EventDetail in src/store/eventRows.ts)
  `
  ALTER TABLE events ADD COLUMN namespace TEXT;
  ALTER TABLE events ADD COLUMN detail TEXT;
  UPDATE events SET namespace = substr(subject, 1, instr(subject, '/') - 1) WHERE kind = 'service';
  `,
  // namespace settings an admin set (issue 14): the Unix user and group its jobs run as
  // (names, resolved by workers), public reads, the roots its absolute outputs stay under (JSON array)
  `
  CREATE TABLE namespaces (
    namespace TEXT PRIMARY KEY,
    run_user TEXT,
    run_group TEXT,
    public INTEGER NOT NULL DEFAULT 0,
    output_roots TEXT NOT NULL DEFAULT '[]',
    updated_at INTEGER NOT NULL
  );
  `,
  // accounting (gantry acct, like qacct): what each attempt's process tree used, as the launcher
  // measured it; the job keeps its latest finished attempt's figures (shown by gantry jobs/status
  // without reading attempts). Attempts by end time: acct reads a time range of a long history.
  `
  ALTER TABLE attempts ADD COLUMN cpu_ms INTEGER;
  ALTER TABLE attempts ADD COLUMN max_rss_bytes INTEGER;
  ALTER TABLE jobs ADD COLUMN cpu_ms INTEGER;
  ALTER TABLE jobs ADD COLUMN max_rss_bytes INTEGER;
  CREATE INDEX attempts_by_end ON attempts (finished_at) WHERE finished_at IS NOT NULL;
  `,
  // event retention (the scheduler prunes the outbox): every event id up to `through` is gone,
  // so a stream asked to resume below it answers 410 instead of silently skipping events
  `
  CREATE TABLE events_pruned (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
  );
  INSERT INTO events_pruned (id, through) VALUES (1, 0);
  `,
  // the Unix user a worker runs as ('root': may run any namespace's jobs); why a job of a mapped namespace waits
  `ALTER TABLE workers ADD COLUMN unix_user TEXT;`,
];
export function migrateSqlite(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  const apply = db.transaction(() => {
    const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
    const current = row.v ?? 0;
    for (let v = current + 1; v <= SQLITE_MIGRATIONS.length; v++) {
      db.exec(SQLITE_MIGRATIONS[v - 1]!);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, Date.now());
    }
    return SQLITE_MIGRATIONS.length - current;
  });
  return apply.immediate();
}
