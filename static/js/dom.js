// A tiny element builder so that modules describe their markup in one expression.

/**
 * h('button', {class: 'x', onclick: fn, 'data-testid': 'y'}, 'text', child) -> HTMLButtonElement.
 * Attributes named on* become listeners; `hidden`/`disabled` etc. take booleans; null children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return el;
}

/** Dates from the API are ISO strings; show them in the visitor's own locale. */
export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

export function formatClock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '0:00';
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

/** Bind a drop zone: files dropped on it, or chosen through its file input, go to onFiles. */
export function bindDropZone(zone, input, onFiles) {
  const over = (event) => {
    event.preventDefault();
    zone.classList.add('is-over');
  };
  zone.addEventListener('dragenter', over);
  zone.addEventListener('dragover', over);
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('is-over');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('is-over');
    if (event.dataTransfer && event.dataTransfer.files.length) onFiles([...event.dataTransfer.files]);
  });
  input.addEventListener('change', () => {
    const files = [...input.files];
    // Cleared so that choosing the same file again still fires `change`.
    input.value = '';
    if (files.length) onFiles(files);
  });
}
