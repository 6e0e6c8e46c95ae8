// Short-lived messages for failures that belong to no particular control.
import { h } from '../dom.js';

const TOAST_MS = 8000;

export function toast(message) {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', { class: 'toast' },
    h('span', {}, message),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'));
  region.append(item);
  setTimeout(() => item.remove(), TOAST_MS);
}

/** Report an unexpected failure of an action named in plain words ("Renaming the track"). */
export function reportError(action, error) {
  console.error(action, error);
  toast(`${action} failed: ${error && error.message ? error.message : 'unknown error'}`);
}
