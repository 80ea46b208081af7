// Notification targets and event names, checked where they come in (the API,
// the CLI): a target is `mailto:address` or an http(s) URL (a signed webhook).
import { NOTIFY_EVENTS, type NotifyEvent } from '../store/types.js';

export type Target = { kind: 'mail'; address: string } | { kind: 'webhook'; url: string };

const ADDRESS = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/;

/** The target, or an error message naming what is wrong with it. */
export function parseTarget(text: string): Target | { error: string } {
  if (text.startsWith('mailto:')) {
    const address = decodeURIComponent(text.slice('mailto:'.length).split('?', 1)[0]!);
    if (!ADDRESS.test(address)) return { error: `'${text}' is not a mailto: address (mailto:ops@example.org)` };
    return { kind: 'mail', address };
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return { error: `'${text}' is neither a mailto: address nor an http(s) URL` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: `'${text}' is neither a mailto: address nor an http(s) URL` };
  return { kind: 'webhook', url: u.toString() };
}

export function isNotifyEvent(s: string): s is NotifyEvent {
  return (NOTIFY_EVENTS as readonly string[]).includes(s);
}

/** The run state an outbox event reports, as the notification event it is (null: none). */
export function runStateEvent(state: string): NotifyEvent | null {
  switch (state) {
    case 'running':
      return 'started';
    case 'succeeded':
    case 'failed':
    case 'cancelled':
      return state;
    default:
      return null;
  }
}
