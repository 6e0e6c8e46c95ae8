// Step 3, numbers: the AF features of the mix, the reference and the equal-loudness baseline,
// loudness and true peak, and the server's plain-language readings.
import { h } from '../dom.js';

const num = (value) => (typeof value === 'number' && Number.isFinite(value) ? value : null);
const fmt = (digits, unit = '', sign = false) => (value) => {
  if (value === null) return '—';
  const text = value.toFixed(digits);
  return `${sign && value > 0 ? '+' : ''}${text}${unit ? ` ${unit}` : ''}`;
};

// Features hold linear RMS (mixing/features.py); people read levels in dBFS.
const rmsDbfs = (rms) => (rms === null || rms <= 0 ? null : 20 * Math.log10(rms));

// Mean absolute difference of two bark spectra in dB: one number for "how far is the tone".
function barkDistanceDb(bands, referenceBands) {
  if (!Array.isArray(bands) || !Array.isArray(referenceBands) || !bands.length || bands.length !== referenceBands.length) return null;
  return bands.reduce((sum, value, i) => sum + Math.abs(value - referenceBands[i]), 0) / bands.length;
}

/**
 * Rows: [label, hint, values {mix, reference, baseline}, formatter, kind]. kind "match" marks
 * whichever of mix and baseline sits nearer the reference; "lower" marks the smaller distance.
 */
function rows(analysis) {
  const features = analysis.features || {};
  const pick = (get) => ({ mix: get('mix'), reference: get('reference'), baseline: get('baseline') });
  const feature = (name, transform = (x) => x) => pick((who) => transform(num((features[who] || {})[name])));
  const lufs = analysis.loudness_lufs || {};
  const peaks = analysis.true_peak_dbtp || {};
  const loss = analysis.af_loss || {};
  const refBark = (features.reference || {}).bark_spectrum_db;
  return [
    ['Loudness', 'integrated, EBU R128', pick((who) => num(lufs[who])), fmt(1, 'LUFS'), null],
    ['True peak', 'highest inter-sample peak', pick((who) => num(peaks[who])), fmt(1, 'dBTP'), null],
    ['RMS level', 'average level', feature('rms', rmsDbfs), fmt(1, 'dBFS'), 'match'],
    ['Crest factor', 'peak over average: punch', feature('crest_factor_db'), fmt(1, 'dB'), 'match'],
    ['Stereo width', 'side over mid energy', feature('stereo_width'), fmt(3), 'match'],
    ['Stereo imbalance', '− left, + right', feature('stereo_imbalance'), fmt(3, '', true), 'match'],
    ['Tone distance', 'bark spectrum, mean difference to the reference',
      { mix: barkDistanceDb((features.mix || {}).bark_spectrum_db, refBark), reference: null, baseline: barkDistanceDb((features.baseline || {}).bark_spectrum_db, refBark) },
      fmt(1, 'dB'), 'lower'],
    ['AF loss', 'all features together, lower is closer', { mix: num((loss.mix || {}).total), reference: null, baseline: num((loss.baseline || {}).total) }, fmt(3), 'lower'],
  ];
}

function winner(values, kind) {
  const { mix, reference, baseline } = values;
  if (!kind || mix === null || baseline === null) return null;
  if (kind === 'lower') return mix <= baseline ? 'mix' : 'baseline';
  if (reference === null) return null;
  return Math.abs(mix - reference) <= Math.abs(baseline - reference) ? 'mix' : 'baseline';
}

export function createAnalysis({ table, readings }) {
  const body = table.tBodies[0];

  function show(analysis) {
    const data = analysis || {};
    body.replaceChildren(...rows(data).map(([label, hint, values, format, kind]) => {
      const best = winner(values, kind);
      const cell = (who) => h('td', { class: best === who ? 'is-closer' : null },
        format(values[who]), best === who ? h('span', { class: 'closer-mark', title: 'closer to the reference' }, ' ✓') : null);
      return h('tr', {},
        h('th', { scope: 'row' }, label, h('span', { class: 'row-hint' }, hint)),
        cell('mix'), cell('reference'), cell('baseline'));
    }));
    // Notes (what the automatic mix wants known, e.g. a mono reference) come before the readings.
    const notes = Array.isArray(data.notes) ? data.notes : [];
    const lines = Array.isArray(data.readings) ? data.readings : [];
    readings.replaceChildren(
      ...notes.map((note) => h('li', { class: 'is-note' }, note)),
      ...lines.map((line) => h('li', {}, line)));
    readings.hidden = notes.length + lines.length === 0;
  }

  return { show };
}
