// Step 3, advice: what to change, track by track, toward the automatic mix (mixing/advice.py, computed by the
// worker with each version). "Apply" moves the sliders of a suggestion's changes; the user then re-renders.
import { h } from '../dom.js';

const effectText = (suggestion) => (suggestion.effect_unit === 'dB'
  ? `${suggestion.effect.toFixed(1)} dB`
  : `AF loss −${suggestion.effect.toFixed(4)}`);

/** list: the <ol> of suggestions; empty: the line shown when there are none; onApply(changes) -> moved count. */
export function createAdvice({ list, empty, onApply }) {
  function show(advice) {
    const suggestions = (advice && Array.isArray(advice.suggestions)) ? advice.suggestions : [];
    list.replaceChildren(...suggestions.map((suggestion, index) => {
      const button = h('button', { type: 'button', class: 'btn btn-small', 'data-testid': `advice-apply-${index}` }, 'Apply');
      button.addEventListener('click', () => {
        const moved = onApply(suggestion.changes || []);
        button.textContent = moved ? 'Applied' : 'Tracks changed';
        button.disabled = true;
      });
      return h('li', { class: `advice-item advice-${suggestion.kind}`, 'data-testid': 'advice-item' },
        h('div', { class: 'advice-head' }, h('p', { class: 'advice-text' }, suggestion.text), button),
        h('p', { class: 'advice-why muted small' }, `Why: ${suggestion.why} Effect: ${effectText(suggestion)}.`));
    }));
    list.hidden = suggestions.length === 0;
    empty.hidden = suggestions.length > 0;
    empty.textContent = advice && advice.suggestions ? 'Nothing to change: this mix sits on the automatic balance.'
      : 'No advice for this version.';
  }

  return { show };
}
