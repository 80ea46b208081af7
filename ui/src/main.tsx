import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';
import { token } from './api';

// The login link `gantry up` prints (`/?token=…`, as Jupyter's): the token is kept in this
// browser, sent as a bearer token from now on, and taken out of the address bar and history.
const fromLink = new URLSearchParams(location.search).get('token');
if (fromLink) {
  token.set(fromLink);
  const rest = new URLSearchParams(location.search);
  rest.delete('token');
  history.replaceState(null, '', location.pathname + (rest.toString() ? `?${rest}` : '') + location.hash);
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
