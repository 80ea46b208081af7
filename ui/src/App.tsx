// The shell: navigation, who is logged in, whether live updates flow, and the page for the URL.
import { AuthProvider, useAuth } from './auth';
import { Link } from './components';
import { useLiveStatus } from './live';
import { useLocation } from './router';
import { OverviewPage } from './pages/Overview';
import { RunsPage } from './pages/Runs';
import { WorkersPage } from './pages/Workers';
import { PoolsPage } from './pages/Pools';
import { WorkflowsPage } from './pages/Workflows';
import { ServicesPage } from './pages/Services';
import { LoginPage } from './pages/Login';

import RunPage from './pages/Run';

const NAV = [
  ['/', 'Overview'],
  ['/runs', 'Runs'],
  ['/workflows', 'Workflows'],
  ['/workers', 'Workers'],
  ['/pools', 'Pools'],
  ['/services', 'Services'],
] as const;

function Page({ path }: { path: string }) {
  const run = /^\/runs\/(\d+)\/?$/.exec(path);
  if (run)
    return <RunPage id={Number(run[1])} />;
  switch (path.replace(/\/$/, '') || '/') {
    case '/':
      return <OverviewPage />;
    case '/runs':
      return <RunsPage />;
    case '/workers':
      return <WorkersPage />;
    case '/pools':
      return <PoolsPage />;
    case '/workflows':
    case '/schedules':
      return <WorkflowsPage />;
    case '/services':
      return <ServicesPage />;
    case '/login':
      return <LoginPage />;
    default:
      return <div className="empty">No page at {path}.</div>;
  }
}

function Who() {
  const { who } = useAuth();
  if (!who) return null;
  if (!who.auth) return <span className="who" data-testid="who">no auth</span>;
  return (
    <span className="who" data-testid="who">
      {who.role ?? 'not logged in'} · <Link to="/login">{who.role ? 'token' : 'log in'}</Link>
    </span>
  );
}

function Shell() {
  const { path } = useLocation();
  const live = useLiveStatus();
  return (
    <div className="app">
      <header className="top">
        <Link to="/" className="brand">
          Gantry
        </Link>
        <nav>
          {NAV.map(([to, label]) => (
            <Link key={to} to={to} className={(to === '/' ? path === '/' : path.startsWith(to)) ? 'active' : ''}>
              {label}
            </Link>
          ))}
        </nav>
        <span className={`live ${live ? 'on' : 'off'}`} title={live ? 'live updates on' : 'reconnecting to the event stream'} data-testid="live">
          ● {live ? 'live' : 'offline'}
        </span>
        <Who />
      </header>
      <main>
        <Page path={path} />
      </main>
    </div>
  );
}

export function App() {
  return (
    <AuthProvider>
      <Shell />
    </AuthProvider>
  );
}
