// The grid at a glance: runs by state, failures of the last 24 h, queues,
// pools, workers busy/idle and jobs finished per worker and minute, live.
import { get, type Overview } from '../api';
import { CountsBar, Empty, ErrorNote, Link, StateBadge, ago, totalOf } from '../components';
import { useLive } from '../live';

const RUN_STATES = ['running', 'queued', 'succeeded', 'failed', 'cancelled'] as const;
const PALETTE = ['#2f7ed8', '#2e9e4f', '#8e44ad', '#e67e22', '#16a085', '#c0392b', '#7f8c8d', '#d35400', '#2c3e50', '#27ae60'];

function Throughput({ o }: { o: Overview }) {
  const start = o.throughput.since;
  const minutes = 60;
  const byWorker = new Map<string, number[]>();
  for (const s of o.throughput.series) {
    const w = s.worker ?? '(none)';
    const arr = byWorker.get(w) ?? new Array<number>(minutes + 1).fill(0);
    const i = Math.round((s.minute - start) / 60_000);
    if (i >= 0 && i <= minutes) arr[i]! += s.succeeded + s.failed;
    byWorker.set(w, arr);
  }
  const workers = [...byWorker.keys()].sort();
  const max = Math.max(1, ...[...byWorker.values()].flat());
  const W = 640;
  const H = 160;
  const x = (i: number) => 36 + (i / minutes) * (W - 46);
  const y = (v: number) => H - 20 - (v / max) * (H - 30);
  if (!workers.length) return <Empty>No job finished in the last hour.</Empty>;
  return (
    <div className="chart" data-testid="throughput">
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" preserveAspectRatio="none" role="img" aria-label="jobs finished per minute per worker">
        <line x1={36} y1={H - 20} x2={W - 10} y2={H - 20} className="axis" />
        <text x={30} y={y(max) + 4} className="tick" textAnchor="end">
          {max}
        </text>
        <text x={30} y={H - 16} className="tick" textAnchor="end">
          0
        </text>
        <text x={36} y={H - 4} className="tick">
          −60 min
        </text>
        <text x={W - 10} y={H - 4} className="tick" textAnchor="end">
          now
        </text>
        {workers.map((w, k) => (
          <polyline
            key={w}
            fill="none"
            stroke={PALETTE[k % PALETTE.length]}
            strokeWidth={1.8}
            points={byWorker
              .get(w)!
              .map((v, i) => `${x(i)},${y(v)}`)
              .join(' ')}
          />
        ))}
      </svg>
      <div className="legend">
        {workers.map((w, k) => (
          <span key={w}>
            <i style={{ background: PALETTE[k % PALETTE.length] }} />
            {w} · {byWorker.get(w)!.reduce((a, b) => a + b, 0)}
          </span>
        ))}
      </div>
    </div>
  );
}

export function OverviewPage() {
  const { data: o, error } = useLive(() => get<Overview>('/api/v1/overview'), [], { minGapMs: 1500, pollMs: 15_000 });
  return (
    <div className="page" data-testid="overview">
      <h1>Overview</h1>
      <ErrorNote error={error} />
      {!o ? (
        <Empty>Loading…</Empty>
      ) : (
        <>
          <div className="cards">
            {RUN_STATES.map((s) => (
              <Link key={s} to={`/runs?state=${s}`} className={`card run-card bd-${s}`}>
                <div className="num" data-testid={`runs-${s}`}>
                  {o.runs[s] ?? 0}
                </div>
                <div className="lbl">runs {s}</div>
              </Link>
            ))}
            <div className={`card ${o.failures.count ? 'bd-failed' : ''}`}>
              <div className="num" data-testid="failures-24h">
                {o.failures.count}
              </div>
              <div className="lbl">jobs failed, 24 h</div>
            </div>
            <Link to="/workers" className="card">
              <div className="num" data-testid="workers-busy">
                {o.workers.busy}
                <small> / {o.workers.busy + o.workers.idle}</small>
              </div>
              <div className="lbl">
                workers busy · {o.workers.idle} idle{o.workers.draining ? ` · ${o.workers.draining} draining` : ''}
              </div>
            </Link>
          </div>
          <div className="grid2">
            <section className="panel">
              <h2>Throughput: jobs finished per minute, per worker</h2>
              <Throughput o={o} />
            </section>
            <section className="panel">
              <h2>Queues</h2>
              {o.queues.length === 0 ? (
                <Empty>No job waiting or running.</Empty>
              ) : (
                <table className="tbl">
                  <thead>
                    <tr>
                      <th>queue</th>
                      <th className="r">queued</th>
                      <th className="r">running</th>
                      <th className="r">retrying</th>
                      <th className="r">pending</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {o.queues.map((q) => (
                      <tr key={q.queue}>
                        <td>{q.queue}</td>
                        <td className="r">{q.counts.queued ?? 0}</td>
                        <td className="r">{q.counts.running ?? 0}</td>
                        <td className="r">{q.counts.retrying ?? 0}</td>
                        <td className="r">{q.counts.pending ?? 0}</td>
                        <td style={{ width: 120 }}>
                          <CountsBar counts={q.counts} total={totalOf(q.counts)} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <h2>Pools</h2>
              {o.pools.length === 0 ? (
                <Empty>No pools.</Empty>
              ) : (
                <table className="tbl">
                  <tbody>
                    {o.pools.map((p) => (
                      <tr key={p.name}>
                        <td>
                          <Link to="/pools">{p.name}</Link>
                        </td>
                        <td className="r">
                          {p.running} / {p.slots ?? '∞'}
                        </td>
                        <td style={{ width: 160 }}>
                          <div className="bar">
                            <div className="seg bg-running" style={{ width: `${p.slots ? Math.min(100, (100 * p.running) / p.slots) : 0}%` }} />
                          </div>
                        </td>
                        <td className="r muted">{p.queued} queued</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          </div>
          <section className="panel">
            <h2>Latest failures (24 h)</h2>
            {o.failures.latest.length === 0 ? (
              <Empty>No failures.</Empty>
            ) : (
              <table className="tbl">
                <tbody>
                  {o.failures.latest.map((j) => (
                    <tr key={j.id}>
                      <td>
                        <Link to={`/runs/${j.runId}?job=${encodeURIComponent(j.id)}`}>{j.id}</Link>
                      </td>
                      <td>
                        <StateBadge state={j.state} />
                      </td>
                      <td className="muted">{j.worker ?? ''}</td>
                      <td className="err-text">{j.error ?? (j.exitCode !== null ? `exit ${j.exitCode}` : '')}</td>
                      <td className="r muted">{ago(j.finishedAt, o.now)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        </>
      )}
    </div>
  );
}
