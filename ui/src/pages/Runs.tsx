// Runs, newest first: filtered by workflow, state and labels (project=enwiki), paged, live.
import { useState } from 'react';
import { get, qs, type Run, type Workflow } from '../api';
import { CountsBar, Empty, ErrorNote, Link, StateBadge, doneOf, duration, etaText, time, totalOf, useNow } from '../components';
import { useLive } from '../live';
import { navigate, useLocation } from '../router';

const PAGE = 50;
const STATES = ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];

export function RunsPage() {
  const { query } = useLocation();
  const workflow = query.get('workflow') ?? '';
  const state = query.get('state') ?? '';
  const label = query.get('label') ?? '';
  const offset = Number(query.get('offset') ?? 0) || 0;
  const [labelDraft, setLabelDraft] = useState(label);
  const now = useNow(1000);
  const labels = label
    .split(/[,\s]+/)
    .map((l) => l.trim())
    .filter((l) => l.includes('='));
  const set = (k: string, v: string) => {
    const q = new URLSearchParams(location.search);
    if (v) q.set(k, v);
    else q.delete(k);
    if (k !== 'offset') q.delete('offset');
    navigate(`/runs${q.toString() ? '?' + q.toString() : ''}`, true);
  };
  const { data, error } = useLive(
    () => get<{ runs: Run[] }>(`/api/v1/runs${qs({ workflow, state, label: labels, limit: PAGE, offset })}`),
    [workflow, state, label, offset],
    { filter: (e) => e.kind === 'run', minGapMs: 1000 },
  );
  const wfs = useLive(() => get<{ workflows: Workflow[] }>('/api/v1/workflows'), [], { filter: () => false, pollMs: 60_000 });
  const runs = data?.runs ?? [];
  return (
    <div className="page" data-testid="runs">
      <h1>Runs</h1>
      <div className="filters">
        <label>
          workflow
          <select value={workflow} onChange={(e) => set('workflow', e.target.value)} data-testid="filter-workflow">
            <option value="">all</option>
            {(wfs.data?.workflows ?? []).map((w) => (
              <option key={`${w.namespace}/${w.name}`} value={w.name}>
                {w.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          state
          <select value={state} onChange={(e) => set('state', e.target.value)} data-testid="filter-state">
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s || 'all'}
              </option>
            ))}
          </select>
        </label>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            set('label', labelDraft.trim());
          }}
        >
          <label>
            labels
            <input placeholder="project=enwiki" value={labelDraft} onChange={(e) => setLabelDraft(e.target.value)} data-testid="filter-label" />
          </label>
        </form>
        <span className="spacer" />
        <button disabled={offset === 0} onClick={() => set('offset', String(Math.max(0, offset - PAGE)))}>
          ← newer
        </button>
        <span className="muted">
          {runs.length ? `${offset + 1}–${offset + runs.length}` : '0'}
        </span>
        <button disabled={runs.length < PAGE} onClick={() => set('offset', String(offset + PAGE))}>
          older →
        </button>
      </div>
      <ErrorNote error={error} />
      {data && runs.length === 0 ? (
        <Empty>No runs match.</Empty>
      ) : (
        <table className="tbl runs">
          <thead>
            <tr>
              <th>run</th>
              <th>workflow</th>
              <th>state</th>
              <th style={{ width: 200 }}>progress</th>
              <th>started</th>
              <th>took</th>
              <th>ETA</th>
              <th>labels</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => {
              const total = totalOf(r.counts);
              const done = doneOf(r.counts);
              return (
                <tr key={r.id} data-run={r.id}>
                  <td>
                    <Link to={`/runs/${r.id}`}>#{r.id}</Link>
                  </td>
                  <td>
                    {r.namespace !== 'default' ? <span className="muted">{r.namespace}/</span> : null}
                    {r.workflow}
                  </td>
                  <td>
                    <StateBadge state={r.state} />
                  </td>
                  <td>
                    <CountsBar counts={r.counts} total={total} />
                    <span className="muted small">
                      {done} / {total}
                      {r.counts.failed ? <span className="err-text"> · {r.counts.failed} failed</span> : null}
                    </span>
                  </td>
                  <td>{time(r.startedAt ?? r.createdAt)}</td>
                  <td>{r.startedAt ? duration((r.finishedAt ?? now) - r.startedAt) : '—'}</td>
                  <td>{r.state === 'running' || r.state === 'queued' ? etaText(r.eta) : '—'}</td>
                  <td>
                    {Object.entries(r.labels).map(([k, v]) => (
                      <button key={k} className="chip" onClick={() => (setLabelDraft(`${k}=${v}`), set('label', `${k}=${v}`))}>
                        {k}={v}
                      </button>
                    ))}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
