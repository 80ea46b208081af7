// Log in with an API token (`gantry token create`): kept in this browser and
// sent as a bearer token with every action.
import { useState } from 'react';
import { token } from '../api';
import { useAuth } from '../auth';
import { navigate } from '../router';
import { reconnectLive } from '../live';

export function LoginPage() {
  const { who, refresh } = useAuth();
  const [draft, setDraft] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const submit = async () => {
    const t = draft.trim();
    if (!t) return;
    token.set(t);
    const w = await refresh();
    if (w.auth && !w.role) {
      token.clear();
      await refresh();
      setNote('The server does not know this token.');
      return;
    }
    setNote(null);
    reconnectLive();
    navigate('/');
  };
  return (
    <div className="page narrow" data-testid="login">
      <h1>Log in</h1>
      <p className="muted">
        Paste an API token (<code>gantry token create --namespace N --role maintainer</code>; <code>gantry up</code> prints a link that logs this browser in, and writes its admin token to <code>.gantry/gantry.token</code>). Reading a
        namespace needs a token of it unless an admin made it public; starting, cancelling and changing things always do.
      </p>
      {who ? (
        <p>
          Now: <b data-testid="current-role">{!who.auth ? 'this server has no auth (everything is allowed)' : (who.role ?? 'not logged in')}</b>
          {who.auth && who.role ? ` · namespaces ${who.namespaces.join(', ')}` : ''}
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <input type="password" autoComplete="off" placeholder="token" value={draft} onChange={(e) => setDraft(e.target.value)} data-testid="token-input" style={{ width: '100%' }} />
        <div className="row">
          <button type="submit" className="primary" data-testid="login-submit">
            Log in
          </button>
          {token.get() ? (
            <button
              type="button"
              onClick={() => {
                token.clear();
                reconnectLive();
                void refresh();
              }}
            >
              Log out
            </button>
          ) : null}
        </div>
      </form>
      {note ? <div className="error-note">{note}</div> : null}
    </div>
  );
}
