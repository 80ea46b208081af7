// Workers: state, queues, slots and resources in use, heartbeat, the jobs each
// runs; a job claimed but not running (lease lapsed, process never started) is highlighted.
import { useState } from 'react';
import { get, post, type Job, type Worker } from '../api';
import { useAuth } from '../auth';
import { Empty, ErrorNote, Link, StateBadge, ago, bytes, useNow } from '../components';
import { useLive } from '../live';

export function WorkersPage() {
  const { can } = useAuth();
  const [actionError, setActionError] = useState<string | null>(null);
  const now = useNow(2000);
  const { data, error, reload } = useLive(
    async () => {
      const [w, stale] = await Promise.all([get<{ workers: Worker[] }>('/api/v1/workers'), get<{ jobs: Job[] }>('/api/v1/jobs?stale=true&limit=1000')]);
      return { workers: w.workers, stale: new Set(stale.jobs.map((j) => j.id)) };
    },
    [],
    { filter: (e) => e.kind === 'job' || e.kind === 'worker', minGapMs: 2000, pollMs: 5000 },
  );
  const drain = async (name: string) => {
    if (!confirm(`Drain ${name}? It finishes its running jobs and claims no new ones.`)) return;
    try {
      setActionError(null);
      await post(`/api/v1/workers/${encodeURIComponent(name)}/drain`);
      reload();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };
  const workers = data?.workers ?? [];
  return (
    <div className="page" data-testid="workers">
      <h1>Workers</h1>
      <ErrorNote error={error ?? actionError} />
      {data && workers.length === 0 ? (
        <Empty>No workers have registered.</Empty>
      ) : (
        <table className="tbl">
          <thead>
            <tr>
              <th>worker</th>
              <th>state</th>
              <th>queues</th>
              <th className="r">slots</th>
              <th className="r">cpu</th>
              <th className="r">memory</th>
              <th>custom</th>
              <th>heartbeat</th>
              <th>running jobs</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {workers.map((w) => {
              const lost = w.state !== 'stopped' && now - w.heartbeatAt > 60_000;
              return (
                <tr key={w.name} data-worker={w.name}>
                  <td>
                    <b>{w.name}</b>
                    <div className="muted small">
                      {w.host} · pid {w.pid}
                    </div>
                  </td>
                  <td>
                    <StateBadge state={lost ? 'lost' : w.state} />
                  </td>
                  <td>{w.queues.join(', ')}</td>
                  <td className="r">
                    {w.running.length} / {w.slots}
                  </td>
                  <td className="r">
                    {w.used.cpu} / {w.resources.cpu}
                  </td>
                  <td className="r">
                    {bytes(w.used.memoryBytes ?? 0)} / {bytes(w.resources.memoryBytes)}
                  </td>
                  <td className="small">
                    {Object.entries(w.resources.custom)
                      .map(([k, v]) => `${k} ${w.used.custom[k] ?? 0}/${v}`)
                      .join(', ')}
                  </td>
                  <td className={lost ? 'err-text' : ''}>{ago(w.heartbeatAt, now)}</td>
                  <td className="jobs-cell">
                    {w.running.map((id) => {
                      const runId = id.split(':')[0];
                      const stale = data!.stale.has(id);
                      return (
                        <Link key={id} to={`/runs/${runId}?job=${encodeURIComponent(id)}`} className={`jobchip ${stale ? 'stale' : ''}`} title={stale ? 'claimed but not running: lease lapsed or process never started' : 'running'}>
                          {id}
                          {stale ? ' · claimed, not running' : ''}
                        </Link>
                      );
                    })}
                  </td>
                  <td>
                    {w.state === 'active' && can() ? (
                      <button onClick={() => void drain(w.name)} data-testid={`drain-${w.name}`}>
                        Drain
                      </button>
                    ) : null}
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
