// Step 4, history: every mix and re-render is a version; open one to hear and shape it, or pick
// one as the Compare source of the player.
import { formatDateTime, h } from '../dom.js';

const METHOD_LABELS = { auto: 'automatic', manual: 'your changes', preset: 'preset' };

/** callbacks: {onOpen(number), onCompare(number | null)}. */
export function createVersions(root, { onOpen, onCompare }) {
  function item(summary, openNumber, compareNumber) {
    const n = summary.number;
    const isOpen = n === openNumber;
    const isCompared = n === compareNumber;
    const loss = Number.isFinite(summary.af_loss) ? summary.af_loss.toFixed(3) : '—';
    return h('li', { class: `version${isOpen ? ' is-open' : ''}`, 'data-testid': `version-${n}`, 'aria-current': isOpen ? 'true' : null },
      h('div', { class: 'version-line' },
        h('span', { class: 'version-no' }, `v${n}`),
        h('span', { class: 'version-method' }, METHOD_LABELS[summary.method] || summary.method),
        h('time', { class: 'muted small', datetime: summary.created_at }, formatDateTime(summary.created_at))),
      h('div', { class: 'version-line muted small' },
        h('span', { title: 'Audio-feature distance to the reference: lower is closer' }, `AF loss ${loss}`),
        Number.isFinite(summary.loudness_lufs) ? h('span', {}, `${summary.loudness_lufs.toFixed(1)} LUFS`) : null),
      h('div', { class: 'version-actions' },
        h('button', { type: 'button', class: 'btn btn-small', disabled: isOpen, 'data-testid': `open-version-${n}`, 'aria-label': `Open version ${n}`, onclick: () => onOpen(n) }, isOpen ? 'Open now' : 'Open'),
        h('button', {
          type: 'button', class: 'btn btn-small btn-ghost', 'aria-pressed': String(isCompared), 'data-testid': `compare-version-${n}`,
          'aria-label': `Compare with version ${n}`, disabled: isOpen, onclick: () => onCompare(isCompared ? null : n),
        }, isCompared ? 'Comparing' : 'Compare')));
  }

  function render(summaries, openNumber, compareNumber) {
    const newestFirst = [...summaries].sort((a, b) => b.number - a.number);
    root.replaceChildren(...newestFirst.map((summary) => item(summary, openNumber, compareNumber)));
  }

  return { render };
}
