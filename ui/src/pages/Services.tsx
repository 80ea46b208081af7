// Services (continuous jobs): what GET /api/v1/services answers, up or down, with restarts.
import { ApiError, get } from '../api';
import { Empty, ErrorNote, StateBadge, ago } from '../components';
import { useLive } from '../live';

type Service = Record<string, unknown> & { name: string };

const pick = (s: Service, ...keys: string[]) => {
  for (const k of keys) if (s[k] !== undefined && s[k] !== null) return s[k];
  return undefined;
};

export function ServicesPage() {
  const { data, error } = useLive(
    async () => {
      try {
        const r = await get<{ services: Service[] } | Service[]>('/api/v1/services');
        return { available: true, services: Array.isArray(r) ? r : r.services };
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return { available: false, services: [] as Service[] };
        throw e;
      }
    },
    [],
    { minGapMs: 2000 },
  );
  return (
    <div className="page" data-testid="services">
      <h1>Services</h1>
      <ErrorNote error={error} />
      {!data ? null : !data.available ? (
        <Empty>This server has no services API yet.</Empty>
      ) : data.services.length === 0 ? (
        <Empty>No services defined.</Empty>
      ) : (
        <table className="tbl">
          <thead>
            <tr>
              <th>service</th>
              <th>state</th>
              <th>worker</th>
              <th className="r">restarts</th>
              <th>since</th>
              <th>last error</th>
            </tr>
          </thead>
          <tbody>
            {data.services.map((s) => {
              const state = String(pick(s, 'state', 'status') ?? 'unknown');
              const since = pick(s, 'startedAt', 'since', 'updatedAt');
              return (
                <tr key={`${String(s.namespace ?? '')}/${s.name}`}>
                  <td>
                    {s.namespace && s.namespace !== 'default' ? <span className="muted">{String(s.namespace)}/</span> : null}
                    <b>{s.name}</b>
                  </td>
                  <td>
                    <StateBadge state={state === 'running' || state === 'up' ? 'up' : state} />
                  </td>
                  <td>{String(pick(s, 'worker') ?? '—')}</td>
                  <td className="r">{String(pick(s, 'restarts', 'restartCount') ?? 0)}</td>
                  <td>{typeof since === 'number' ? ago(since) : '—'}</td>
                  <td className="err-text small">{String(pick(s, 'lastError', 'error') ?? '')}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
