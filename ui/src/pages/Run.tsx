// One run: its DAG (groups closed, opened on click), a timeline, every job in a
// virtualised list, and a job's attempts, errors, progress and live log tail.
// Live: every event of this run reloads the graph (at most once a second).
import { useEffect, useMemo, useRef, useState } from 'react';
import { authHeaders, get, post, qs, type Attempt, type GraphNode, type Job, type LogLine, type RunGraph } from '../api';
import { useAuth } from '../auth';
import { CountsBar, ErrorNote, Link, StateBadge, VirtualList, doneOf, duration, etaText, time, totalOf, useNow } from '../components';
import { useLive } from '../live';
import { navigate, useLocation } from '../router';
import { GraphView } from './Graph';

type Tab = 'graph' | 'timeline' | 'jobs';

function setQuery(changes: Record<string, string | null>) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) q.delete(k);
    else q.set(k, v);
  }
  navigate(`${location.pathname}${q.toString() ? '?' + q.toString() : ''}`, true);
}

export default function RunPage({ id }: { id: number }) {
  const { query } = useLocation();
  const tab = (query.get('tab') as Tab | null) ?? 'graph';
  const jobId = query.get('job');
  const [expand, setExpand] = useState<string[]>(() => query.getAll('expand'));
  const [all, setAll] = useState<string[]>(() => query.getAll('all'));
  const { can } = useAuth();
  const [actionError, setActionError] = useState<string | null>(null);
  const now = useNow(1000);
  const { data: g, error, reload } = useLive(() => get<RunGraph>(`/api/v1/runs/${id}/graph${qs({ expand, all })}`), [id, expand.join('\n'), all.join('\n')], {
    filter: (e) => e.runId === id,
    minGapMs: 1000,
    pollMs: 15_000,
  });

  const toggle = (group: string) => {
    const open = expand.includes(group);
    // closing a group closes what is open inside it
    const next = open ? expand.filter((x) => x !== group && !x.startsWith(group + '.') && !x.startsWith(group + '[')) : [...expand, group];
    setExpand(next);
    const q = new URLSearchParams(location.search);
    q.delete('expand');
    for (const x of next) q.append('expand', x);
    navigate(`${location.pathname}?${q.toString()}`, true);
  };

  const showAll = (group: string) => {
    const next = [...all, group];
    setAll(next);
    const q = new URLSearchParams(location.search);
    q.append('all', group);
    navigate(`${location.pathname}?${q.toString()}`, true);
  };

  const act = async (what: string, path: string, body: unknown = {}) => {
    if (!confirm(`${what}?`)) return;
    try {
      setActionError(null);
      await post(path, body);
      reload();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };

  if (!g) return <div className="page">{error ? <ErrorNote error={error} /> : <div className="empty">Loading run {id}…</div>}</div>;
  const r = g.run;
  const total = totalOf(r.counts);
  const active = r.state === 'running' || r.state === 'queued';
  const mayAct = can(r.namespace);
  return (
    <div className="page run-page" data-testid="run" data-run-state={r.state}>
      <div className="run-head">
        <h1>
          <Link to="/runs" className="muted">
            Runs
          </Link>{' '}
          / #{r.id} {r.workflow} <StateBadge state={r.state} />
        </h1>
        <div className="facts">
          <span>
            <CountsBar counts={r.counts} total={total} height={10} />
            <span className="small">
              {doneOf(r.counts)} / {total} jobs
              {r.counts.running ? ` · ${r.counts.running} running` : ''}
              {r.counts.failed ? <span className="err-text"> · {r.counts.failed} failed</span> : null}
            </span>
          </span>
          <span>started {time(r.startedAt)}</span>
          <span>took {r.startedAt ? duration((r.finishedAt ?? now) - r.startedAt) : '—'}</span>
          <span>ETA {active ? etaText(r.eta) : '—'}</span>
          {Object.entries(r.labels).map(([k, v]) => (
            <Link key={k} className="chip" to={`/runs?label=${encodeURIComponent(`${k}=${v}`)}`}>
              {k}={v}
            </Link>
          ))}
          <span className="muted small" title={JSON.stringify(r.params)}>
            {Object.entries(r.params)
              .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
              .join(' ')}
          </span>
        </div>
        {mayAct ? (
          <div className="actions">
            {active ? (
              <button className="danger" onClick={() => void act(`Cancel run ${r.id}`, `/api/v1/runs/${r.id}/cancel`)} data-testid="cancel-run">
                Cancel run
              </button>
            ) : null}
            {!active && (r.counts.failed || r.counts.cancelled) ? (
              <button onClick={() => void act(`Retry the failed jobs of run ${r.id}`, `/api/v1/runs/${r.id}/retry`, { failed: true })} data-testid="retry-failed">
                Retry failed
              </button>
            ) : null}
            {!active ? (
              <button onClick={() => void act(`Rerun all of run ${r.id}, forced (outputs are rewritten)`, `/api/v1/runs/${r.id}/retry`, { force: true })} data-testid="force-rerun">
                Force rerun
              </button>
            ) : null}
          </div>
        ) : null}
      </div>
      <ErrorNote error={error ?? actionError} />
      <div className="tabs">
        {(['graph', 'timeline', 'jobs'] as Tab[]).map((t) => (
          <button key={t} className={tab === t ? 'active' : ''} onClick={() => setQuery({ tab: t === 'graph' ? null : t })} data-testid={`tab-${t}`}>
            {t === 'graph' ? 'Graph' : t === 'timeline' ? 'Timeline' : `Jobs (${total})`}
          </button>
        ))}
        {g.expanded.length ? (
          <span className="opened">
            open:
            {g.expanded.map((x) => (
              <button key={x.id} className="chip" onClick={() => toggle(x.id)} title="close this group" data-testid={`collapse-${x.id}`}>
                {x.id} ✕
              </button>
            ))}
          </span>
        ) : null}
      </div>
      <div className={`run-body ${jobId ? 'with-panel' : ''}`}>
        <div className="run-main">
          {tab === 'graph' ? (
            <GraphView graph={g} onMore={showAll} selected={jobId ? jobId.slice(jobId.indexOf(':') + 1).replace(/#\d+$/, '') : null} onOpen={toggle} onSelect={(n: GraphNode) => setQuery({ job: `${r.id}:${n.id}` })} />
          ) : tab === 'timeline' ? (
            <Timeline graph={g} now={now} onOpen={toggle} onSelect={(n) => setQuery({ job: `${r.id}:${n.id}` })} />
          ) : (
            <JobsList runId={r.id} total={total} version={g.lastEventId} onSelect={(j) => setQuery({ job: j })} />
          )}
        </div>
        {jobId ? <JobPanel key={jobId} jobId={jobId} runId={r.id} namespace={r.namespace} node={g.nodes.find((n) => `${r.id}:${n.id}` === jobId.replace(/#\d+$/, ''))} onClose={() => setQuery({ job: null })} /> : null}
      </div>
    </div>
  );
}

function Timeline({ graph, now, onOpen, onSelect }: { graph: RunGraph; now: number; onOpen: (id: string) => void; onSelect: (n: GraphNode) => void }) {
  const rows = useMemo(() => [...graph.nodes].sort((a, b) => (a.startedAt ?? Infinity) - (b.startedAt ?? Infinity)), [graph]);
  const t0 = graph.run.startedAt ?? Math.min(...rows.map((n) => n.startedAt ?? Infinity), now);
  const t1 = Math.max(graph.run.finishedAt ?? now, t0 + 1000);
  const pct = (t: number) => `${(100 * (t - t0)) / (t1 - t0)}%`;
  return (
    <div className="timeline" data-testid="timeline">
      <div className="tl-axis">
        <span>{time(t0)}</span>
        <span>{duration(t1 - t0)}</span>
        <span>{graph.run.finishedAt ? time(t1) : 'now'}</span>
      </div>
      <VirtualList
        count={rows.length}
        rowHeight={24}
        height="calc(100vh - 300px)"
        row={(i) => {
          const n = rows[i]!;
          const group = n.kind === 'foreach' || n.kind === 'subworkflow' || n.kind === 'pipeline';
          if (n.kind === 'more') return <div className="tl-row muted">{n.label} (open them in the graph)</div>;
          const end = n.finishedAt && !['running', 'queued', 'retrying', 'pending'].includes(n.state) ? n.finishedAt : now;
          return (
            <div className="tl-row" onClick={() => (group ? onOpen(n.id) : onSelect(n))}>
              <span className="tl-name" title={n.id}>
                {group ? '▸ ' : ''}
                {n.id}
              </span>
              <span className="tl-track">
                {n.startedAt ? (
                  <span className={`tl-bar bg-${n.state}`} style={{ left: pct(n.startedAt), width: `max(2px, calc(${pct(end)} - ${pct(n.startedAt)}))` }} title={`${time(n.startedAt)} → ${time(end)} (${duration(end - n.startedAt)})`} />
                ) : (
                  <span className="muted small">{n.state}</span>
                )}
              </span>
            </div>
          );
        }}
      />
    </div>
  );
}

const BLOCK = 200;

function JobsList({ runId, total, version, onSelect }: { runId: number; total: number; version: number; onSelect: (id: string) => void }) {
  const cache = useRef(new Map<number, Job[] | 'loading'>());
  const [, setTick] = useState(0);
  useEffect(() => {
    // new events: blocks are read again as they come into view
    cache.current = new Map();
    setTick((t) => t + 1);
  }, [version, runId]);
  const jobAt = (i: number): Job | null => {
    const b = Math.floor(i / BLOCK);
    const block = cache.current.get(b);
    if (block === undefined) {
      const map = cache.current;
      map.set(b, 'loading');
      void get<{ jobs: Job[] }>(`/api/v1/jobs${qs({ run: runId, limit: BLOCK, offset: b * BLOCK })}`)
        .then((r) => {
          if (cache.current === map) {
            map.set(b, r.jobs);
            setTick((t) => t + 1);
          }
        })
        .catch(() => map.delete(b));
      return null;
    }
    return block === 'loading' ? null : (block[i % BLOCK] ?? null);
  };
  return (
    <div className="jobs-list" data-testid="jobs-list">
      <div className="jl-row jl-head">
        <span>job</span>
        <span>state</span>
        <span>worker</span>
        <span>attempts</span>
        <span>started</span>
        <span>took</span>
        <span>error</span>
      </div>
      <VirtualList
        count={total}
        rowHeight={26}
        height="calc(100vh - 320px)"
        row={(i) => {
          const j = jobAt(i);
          if (!j) return <div className="jl-row muted">…</div>;
          return (
            <div className="jl-row" onClick={() => onSelect(j.id)} data-job={j.id}>
              <span className="mono">{j.id.slice(j.id.indexOf(':') + 1)}</span>
              <span>
                <StateBadge state={j.state} />
              </span>
              <span className="muted">{j.worker ?? ''}</span>
              <span>{j.attempts}</span>
              <span>{time(j.startedAt)}</span>
              <span>{j.startedAt ? duration((j.finishedAt ?? Date.now()) - j.startedAt) : ''}</span>
              <span className="err-text">{j.error ?? ''}</span>
            </div>
          );
        }}
      />
    </div>
  );
}

const MAX_LOG_LINES = 2000;

function LogTail({ jobId }: { jobId: string }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [finished, setFinished] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const box = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const ctl = new AbortController();
    let after = 0;
    let stop = false;
    (async () => {
      let first = true;
      while (!stop) {
        try {
          const r = await fetch(`/api/v1/logs${qs({ job: jobId, after, limit: 5000, wait: first ? undefined : 20 })}`, { signal: ctl.signal, headers: authHeaders() });
          if (!r.ok) throw new Error(((await r.json().catch(() => ({}))) as { error?: string }).error ?? r.statusText);
          const body = (await r.json()) as { lines: LogLine[]; next: number; finished: boolean };
          after = body.next;
          if (body.lines.length) setLines((old) => [...old, ...body.lines].slice(-MAX_LOG_LINES));
          first = body.lines.length === 5000;
          if (body.finished) {
            setFinished(true);
            return;
          }
          setError(null);
        } catch (e) {
          if (stop) return;
          setError((e as Error).message);
          await new Promise((res) => setTimeout(res, 2000));
        }
      }
    })();
    return () => {
      stop = true;
      ctl.abort();
    };
  }, [jobId]);
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);
  return (
    <div className="logs">
      <h3>
        Log {finished ? <span className="muted small">(complete)</span> : <span className="live-dot small">● following</span>}
      </h3>
      <ErrorNote error={error} />
      <pre
        ref={box}
        data-testid="log"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 20;
        }}
      >
        {lines.length === 0 ? <span className="muted">no output yet</span> : null}
        {lines.map((l) => (
          <div key={l.id} className={`ll ${l.stream}`}>
            <span className="lt">{new Date(l.ts).toLocaleTimeString(undefined, { hour12: false })}</span> {l.line}
          </div>
        ))}
      </pre>
    </div>
  );
}

function JobPanel({ jobId, runId, namespace, node, onClose }: { jobId: string; runId: number; namespace: string; node?: GraphNode; onClose: () => void }) {
  const { can } = useAuth();
  const [actionError, setActionError] = useState<string | null>(null);
  const { data: j, error, reload } = useLive(() => get<Job & { attemptList: Attempt[] }>(`/api/v1/jobs/${encodeURIComponent(jobId)}`), [jobId], {
    filter: (e) => e.runId === runId && (e.jobId === jobId || e.kind === 'run'),
    minGapMs: 700,
  });
  const active = j && ['pending', 'queued', 'running', 'retrying'].includes(j.state);
  const base = jobId.replace(/#\d+$/, '');
  const chunkTotal = node?.chunks?.total ?? 0;
  const cancel = async () => {
    if (!confirm(`Cancel ${jobId}?`)) return;
    try {
      setActionError(null);
      await post(`/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`);
      reload();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };
  return (
    <aside className="panel job-panel" data-testid="job-panel" data-job={jobId} data-state={j?.state}>
      <div className="jp-head">
        <h2 className="mono">{jobId.slice(jobId.indexOf(':') + 1)}</h2>
        <button className="link" onClick={onClose} aria-label="close">
          ✕
        </button>
      </div>
      <ErrorNote error={error ?? actionError} />
      {chunkTotal ? (
        <div className="chunks-pick">
          chunks:{' '}
          <button className={`chip ${jobId === base ? 'active' : ''}`} onClick={() => setQuery({ job: base })}>
            combine
          </button>
          <select value={/#(\d+)$/.exec(jobId)?.[1] ?? ''} onChange={(e) => setQuery({ job: e.target.value === '' ? base : `${base}#${e.target.value}` })}>
            <option value="">chunk…</option>
            {Array.from({ length: Math.min(chunkTotal, 5000) }, (_, i) => (
              <option key={i} value={i}>
                #{i}
              </option>
            ))}
          </select>
          <span className="muted small">
            {' '}
            {node!.chunks!.done}/{chunkTotal} done
          </span>
        </div>
      ) : null}
      {!j ? null : (
        <>
          <div className="kv">
            <span>state</span>
            <span>
              <StateBadge state={j.state} />
              {j.skipReason ? <span className="muted small"> ({j.skipReason})</span> : null}
            </span>
            <span>progress</span>
            <span>
              {j.state === 'succeeded' || j.state === 'skipped' ? (
                '100%'
              ) : j.progress !== null ? (
                <>
                  <div className="bar" style={{ width: 160, display: 'inline-block', verticalAlign: 'middle' }}>
                    <div className="seg bg-running" style={{ width: `${j.progress}%` }} />
                  </div>{' '}
                  {Math.round(j.progress)}%
                </>
              ) : (
                '—'
              )}
            </span>
            <span>worker</span>
            <span>{j.worker ?? '—'}</span>
            <span>queue · pool</span>
            <span>
              {j.queue} · {j.pool ?? '—'}
            </span>
            <span>attempts</span>
            <span>
              {j.attempts} (retries allowed: {j.maxRetries})
            </span>
            <span>started</span>
            <span>{time(j.startedAt)}</span>
            <span>took</span>
            <span>{j.startedAt ? duration((j.finishedAt ?? Date.now()) - j.startedAt) : '—'}</span>
            {j.waitingReason ? (
              <>
                <span>waiting</span>
                <span className="err-text">{j.waitingReason}</span>
              </>
            ) : null}
            {j.error ? (
              <>
                <span>error</span>
                <span className="err-text">
                  {j.error}
                  {j.exitCode !== null ? ` (exit ${j.exitCode})` : ''}
                </span>
              </>
            ) : null}
            {Object.entries(j.outputs).map(([k, v]) => (
              <span key={k} style={{ display: 'contents' }}>
                <span>out {k}</span>
                <span className="mono small">{v}</span>
              </span>
            ))}
          </div>
          {active && can(namespace) ? (
            <div className="actions">
              <button className="danger" onClick={() => void cancel()} data-testid="cancel-job">
                Cancel job
              </button>
            </div>
          ) : null}
          {j.attemptList.length ? (
            <table className="tbl small">
              <thead>
                <tr>
                  <th>#</th>
                  <th>state</th>
                  <th>worker</th>
                  <th>started</th>
                  <th>took</th>
                  <th>error</th>
                </tr>
              </thead>
              <tbody>
                {j.attemptList.map((a) => (
                  <tr key={a.fence}>
                    <td>{a.number}</td>
                    <td>
                      <StateBadge state={a.state} />
                    </td>
                    <td>{a.worker}</td>
                    <td>{time(a.startedAt)}</td>
                    <td>{duration((a.finishedAt ?? Date.now()) - a.startedAt)}</td>
                    <td className="err-text">{a.error ?? (a.exitCode ? `exit ${a.exitCode}` : '')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </>
      )}
      <LogTail jobId={jobId} />
    </aside>
  );
}
