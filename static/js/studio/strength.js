// Match strength: one slider per dimension (0-100 %) for how closely the mix follows the reference;
// each change (on release) asks the server to render the strengths as a new version.
import { h } from '../dom.js';

const DIMENSIONS = [
  ['tone', 'Tone'], ['dynamics', 'Dynamics'], ['width', 'Width'], ['balance', 'Left/right balance'],
  ['loudness', 'Loudness'],
];

export function createStrength(root, { onChange }) {
  const inputs = {};
  const note = h('p', { class: 'muted' }, '');
  const rows = DIMENSIONS.map(([key, label]) => {
    const output = h('output', {}, '100 %');
    const input = h('input', {
      type: 'range', min: '0', max: '100', step: '5', value: '100', 'data-testid': `strength-${key}`,
      'aria-label': `${label} match strength (%)`,
    });
    input.addEventListener('input', () => { output.textContent = `${input.value} %`; });
    input.addEventListener('change', () => onChange(values()));
    inputs[key] = { input, output };
    return h('label', { class: 'strength-row' }, h('span', {}, label), input, output);
  });
  root.replaceChildren(...rows, note);

  function values() {
    return Object.fromEntries(Object.entries(inputs).map(([key, { input }]) => [key, Number(input.value)]));
  }

  /** Show a version's strengths (100 % where it set none); a version without a neutral start cannot move. */
  function load(version) {
    for (const [key, { input, output }] of Object.entries(inputs)) {
      const value = (version.strengths_pct || {})[key] ?? 100;
      input.value = String(Math.round(value));
      output.textContent = `${input.value} %`;
      input.disabled = !version.has_neutral;
    }
    note.textContent = version.has_neutral
      ? '0 % keeps the neutral start (levels by role, streaming loudness); 100 % follows the reference fully.'
      : 'This mix was made before match strength existed; mix again to use these sliders.';
  }

  return { load, values };
}
