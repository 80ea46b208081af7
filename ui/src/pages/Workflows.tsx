// Workflows with their schedules and next starts; "Start run" opens a form of
// the workflow's parameters (defaults filled in, enums as choices).
import { useState } from 'react';
import { get, post, type Run, type Workflow } from '../api';
import { useAuth } from '../auth';
import { Empty, ErrorNote, Link, time } from '../components';
import { useLive } from '../live';
import { navigate } from '../router';

function paramText(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.join(',');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function StartRunForm({ wf, onClose }: { wf: Workflow; onClose: () => void }) {
  const names = Object.keys(wf.params);
  const [values, setValues] = useState<Record<string, string>>(() => Object.fromEntries(names.map((n) => [n, paramText(wf.params[n]!.default)])));
  const [labels, setLabels] = useState('');
  const [priority, setPriority] = useState('');
  const [force, setForce] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const params: Record<string, unknown> = {};
      for (const n of names) {
        const text = values[n] ?? '';
        if (text === '' && !wf.params[n]!.required) continue;
        const def = wf.params[n]!.default;
        // a list parameter is typed comma-separated, like `gantry run -p wikis=a,b`
        params[n] = Array.isArray(def) ? text.split(',').map((s) => s.trim()).filter(Boolean) : text;
      }
      const lab: Record<string, string> = {};
      for (const part of labels.split(/[,\s]+/).filter(Boolean)) {
        const i = part.indexOf('=');
        if (i <= 0) throw new Error(`label '${part}' is not key=value`);
        lab[part.slice(0, i)] = part.slice(i + 1);
      }
      const run = await post<Run>('/api/v1/runs', {
        workflow: wf.name,
        namespace: wf.namespace,
        params,
        ...(Object.keys(lab).length ? { labels: lab } : {}),
        ...(priority ? { priority: Number(priority) } : {}),
        ...(force ? { force: true } : {}),
      });
      navigate(`/runs/${run.id}`);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="modal-back" onClick={onClose}>
      <form
        className="modal"
        data-testid="start-run-form"
        onClick={(e) => e.stopPropagation()}
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <h2>Start {wf.name}</h2>
        {wf.description ? <p className="muted">{wf.description}</p> : null}
        <div className="form-grid">
          {names.map((n) => {
            const p = wf.params[n]!;
            return (
              <label key={n}>
                <span>
                  {n}
                  {p.required ? ' *' : ''}
                </span>
                {p.enum ? (
                  <select value={values[n]} onChange={(e) => setValues({ ...values, [n]: e.target.value })} data-param={n}>
                    {p.enum.map((v) => (
                      <option key={String(v)} value={String(v)}>
                        {String(v)}
                      </option>
                    ))}
                  </select>
                ) : (
                  <input value={values[n]} required={p.required} onChange={(e) => setValues({ ...values, [n]: e.target.value })} data-param={n} />
                )}
                {p.description ? <small className="muted">{p.description}</small> : null}
              </label>
            );
          })}
          <label>
            <span>labels</span>
            <input placeholder="key=value, …" value={labels} onChange={(e) => setLabels(e.target.value)} />
          </label>
          <label>
            <span>priority</span>
            <input type="number" value={priority} onChange={(e) => setPriority(e.target.value)} />
          </label>
          <label className="check">
            <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} /> force (rerun tasks whose outputs exist)
          </label>
        </div>
        <ErrorNote error={error} />
        <div className="row">
          <button type="submit" className="primary" disabled={busy} data-testid="start-run-submit">
            Start run
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}

export function WorkflowsPage() {
  const { can } = useAuth();
  const [starting, setStarting] = useState<Workflow | null>(null);
  const { data, error } = useLive(() => get<{ workflows: Workflow[] }>('/api/v1/workflows'), [], { filter: () => false, pollMs: 30_000 });
  const wfs = data?.workflows ?? [];
  return (
    <div className="page" data-testid="workflows">
      <h1>Workflows &amp; schedules</h1>
      <ErrorNote error={error} />
      {data && wfs.length === 0 ? (
        <Empty>No workflows applied (gantry apply FILE).</Empty>
      ) : (
        <table className="tbl">
          <thead>
            <tr>
              <th>workflow</th>
              <th>description</th>
              <th className="r">tasks</th>
              <th>schedules · next start</th>
              <th>version</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {wfs.map((w) => (
              <tr key={`${w.namespace}/${w.name}`} data-workflow={w.name}>
                <td>
                  {w.namespace !== 'default' ? <span className="muted">{w.namespace}/</span> : null}
                  <Link to={`/runs?workflow=${encodeURIComponent(w.name)}`}>
                    <b>{w.name}</b>
                  </Link>
                </td>
                <td className="muted">{w.description}</td>
                <td className="r">{w.tasks}</td>
                <td>
                  {w.schedules.length === 0 ? (
                    <span className="muted">—</span>
                  ) : (
                    w.schedules.map((s) => (
                      <div key={s.key}>
                        <code>{s.cron}</code> {s.timezone} · <b>{s.nextAt ? time(s.nextAt) : (s.next ?? 'never')}</b>
                      </div>
                    ))
                  )}
                </td>
                <td className="muted">
                  v{w.version} · {time(w.updatedAt)}
                </td>
                <td>
                  {can(w.namespace) ? (
                    <button className="primary" onClick={() => setStarting(w)} data-testid={`start-${w.name}`}>
                      Start run
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {starting ? <StartRunForm wf={starting} onClose={() => setStarting(null)} /> : null}
    </div>
  );
}
