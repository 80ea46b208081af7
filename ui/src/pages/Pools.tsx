// Pools: cluster-wide slots, running and queued jobs; slots are edited in place.
import { useState } from 'react';
import { get, put, type Pool } from '../api';
import { useAuth } from '../auth';
import { Empty, ErrorNote } from '../components';
import { useLive } from '../live';

function SlotsCell({ pool, editable, onSaved }: { pool: Pool; editable: boolean; onSaved: () => void }) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState('');
  const [error, setError] = useState<string | null>(null);
  const save = async () => {
    const text = draft.trim();
    const slots = text === '' || text === '∞' || text === 'unlimited' ? null : Number(text);
    if (slots !== null && (!Number.isInteger(slots) || slots < 0)) return setError('a whole number ≥ 0, or empty for no limit');
    try {
      await put(`/api/v1/pools/${encodeURIComponent(pool.name)}`, { slots });
      setEditing(false);
      setError(null);
      onSaved();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  if (!editing)
    return (
      <span className="slots">
        <b data-testid={`slots-${pool.name}`}>{pool.slots ?? '∞'}</b>{' '}
        {editable ? (
          <button
            className="link"
            onClick={() => {
              setDraft(pool.slots === null ? '' : String(pool.slots));
              setEditing(true);
            }}
            data-testid={`edit-slots-${pool.name}`}
          >
            edit
          </button>
        ) : null}
      </span>
    );
  return (
    <form
      className="inline"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <input autoFocus size={5} value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="∞" data-testid={`slots-input-${pool.name}`} onKeyDown={(e) => e.key === 'Escape' && setEditing(false)} />
      <button type="submit">Save</button>
      <button type="button" onClick={() => setEditing(false)}>
        Cancel
      </button>
      {error ? <span className="err-text small"> {error}</span> : null}
    </form>
  );
}

export function PoolsPage() {
  const { can } = useAuth();
  const { data, error, reload } = useLive(() => get<{ pools: Pool[] }>('/api/v1/pools'), [], { filter: (e) => e.kind === 'job', minGapMs: 1500 });
  const pools = data?.pools ?? [];
  return (
    <div className="page" data-testid="pools">
      <h1>Pools</h1>
      <ErrorNote error={error} />
      {data && pools.length === 0 ? (
        <Empty>No pools. A task takes one with `pool: NAME`; `gantry pool set NAME N` limits it.</Empty>
      ) : (
        <table className="tbl">
          <thead>
            <tr>
              <th>pool</th>
              <th>slots</th>
              <th className="r">running</th>
              <th className="r">queued</th>
              <th style={{ width: 240 }}>use</th>
            </tr>
          </thead>
          <tbody>
            {pools.map((p) => (
              <tr key={p.name} data-pool={p.name}>
                <td>
                  <b>{p.name}</b>
                </td>
                <td>
                  <SlotsCell pool={p} editable={can()} onSaved={reload} />
                </td>
                <td className="r">{p.running}</td>
                <td className="r">{p.queued}</td>
                <td>
                  <div className="bar">
                    <div className="seg bg-running" style={{ width: `${p.slots ? Math.min(100, (100 * p.running) / p.slots) : p.running ? 100 : 0}%` }} />
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
