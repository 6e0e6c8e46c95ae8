// Step 4, what the mix did: for the console row selected, its EQ curve (the console's own filters), its
// compressor's gain reduction over time, pan and level in the mix; for the master, its EQ, the match EQ and
// the width per band against the reference. The worker computes it with each version (GET .../explain/).
import * as api from '../api.js';
import { h } from '../dom.js';
import { themed } from './charts.js';

const COLOURS = { curve: '#4cc9f0', reduction: '#f72585', mix: '#4cc9f0', reference: '#f7b538', bars: '#7bd389' };
const FREQ_AXIS = { title: { text: 'Frequency (Hz)' }, type: 'log', range: [Math.log10(20), Math.log10(20000)] };
const PLOT_CONFIG = { responsive: true, displaylogo: false };
const CARDS = {
  eq: 'EQ curve',
  reduction: 'Compressor gain reduction',
  match: 'Match EQ per band',
  width: 'Width per band against the reference',
};

const panText = (pct) => (Math.abs(pct) < 0.5 ? 'centre' : `${pct < 0 ? 'L' : 'R'} ${Math.abs(pct).toFixed(0)} %`);
const dB = (value, digits = 1) => `${value > 0 ? '+' : value < 0 ? '−' : ''}${Math.abs(value).toFixed(digits)} dB`;

function line(x, y, name, colour, extra = {}) {
  return { type: 'scatter', mode: 'lines', x, y, name, line: { color: colour, width: 2 }, ...extra };
}

export function createExplain(root) {
  let explanation = null;
  let selected = null; // {key, stems}
  let token = 0;
  const title = h('h3', { class: 'explain-title', id: 'explain-title' }, 'What the mix did');
  const summary = h('p', { class: 'muted small', 'data-testid': 'explain-summary' });
  const grid = h('div', { class: 'charts explain-charts' });
  const plots = {};
  for (const [key, caption] of Object.entries(CARDS)) {
    const plot = h('div', { class: 'chart-plot explain-plot', 'data-testid': `explain-${key}` });
    plots[key] = { plot, card: h('figure', { class: 'chart', hidden: true }, h('figcaption', {}, caption), plot) };
    grid.append(plots[key].card);
  }
  root.replaceChildren(title, summary, grid);
  root.hidden = true;

  function draw(key, traces, layout) {
    const { card, plot } = plots[key];
    card.hidden = !traces;
    if (!traces) {
      if (window.Plotly) window.Plotly.purge(plot);
      return;
    }
    // A legend sits above the plot, in a top margin made for it.
    const legend = traces.length > 1;
    const margin = { t: legend ? 64 : 24, ...(layout.margin || {}) };
    window.Plotly.react(plot, traces, themed({ showlegend: legend, legend: { orientation: 'h', y: 1.02, yanchor: 'bottom' }, ...layout, margin }), PLOT_CONFIG);
  }

  // At least ±6 dB, so that a small move does not fill the chart as if it were a big one.
  function gainAxis(curve) {
    return { title: { text: 'Gain (dB)' }, range: [Math.min(-6, Math.min(...curve) - 1), Math.max(6, Math.max(...curve) + 1)] };
  }

  function eqTraces(freqs, curve, name) {
    return [line(freqs, curve, name, COLOURS.curve, { hovertemplate: '%{x:.0f} Hz: %{y:.1f} dB<extra></extra>' })];
  }

  function showTrack(track, freqs, durationS) {
    title.textContent = `What the mix did: ${track.name}`;
    const level = track.level_in_mix_db === null ? 'muted in this version'
      : `${dB(track.level_in_mix_db)} against the whole mix`;
    summary.textContent = `Pan ${panText(track.pan_pct)} · fader ${dB(track.gain_db)} · level ${track.level_db.toFixed(1)} dBFS after its strip, ${level} · deepest gain reduction ${dB(Math.min(0, ...track.gain_reduction_db))}`;
    draw('eq', eqTraces(freqs, track.eq_db, 'EQ'), { xaxis: FREQ_AXIS, yaxis: gainAxis(track.eq_db) });
    const points = track.gain_reduction_db.length;
    const times = track.gain_reduction_db.map((_, index) => ((index + 0.5) * durationS) / points);
    draw('reduction', [line(times, track.gain_reduction_db, 'Gain reduction', COLOURS.reduction,
      { fill: 'tozeroy', hovertemplate: '%{x:.1f} s: %{y:.1f} dB<extra></extra>' })],
    { xaxis: { title: { text: 'Time (s)' } }, yaxis: { title: { text: 'Gain (dB), deepest per segment' }, rangemode: 'nonpositive' } });
    draw('match', null);
    draw('width', null);
  }

  function showMaster(master) {
    title.textContent = 'What the mix did: master';
    summary.textContent = `Stereo width ${master.width_pct.toFixed(0)} % · match EQ from ${dB(Math.min(...master.match_eq_gain_db))} to ${dB(Math.max(...master.match_eq_gain_db))} · band widths ${Math.min(...master.band_width_pct).toFixed(0)}–${Math.max(...master.band_width_pct).toFixed(0)} %`;
    const centres = master.band_centres_hz;
    draw('eq', eqTraces(master.eq_freqs_hz, master.eq_db, 'Master EQ'), { xaxis: FREQ_AXIS, yaxis: gainAxis(master.eq_db) });
    draw('reduction', null);
    draw('match', [
      { type: 'bar', x: centres, y: master.match_eq_gain_db, name: 'Gain', marker: { color: COLOURS.bars }, hovertemplate: '%{x:.0f} Hz: %{y:.1f} dB<extra></extra>' },
      line(centres, master.match_eq_lr_db, 'Left − right', COLOURS.reference, { mode: 'lines+markers', hovertemplate: '%{x:.0f} Hz: %{y:.1f} dB<extra></extra>' }),
    ], { xaxis: FREQ_AXIS, yaxis: { title: { text: 'Gain (dB)' } } });
    const spectra = master.spectra || {};
    const traces = [{ type: 'bar', x: centres, y: master.band_width_pct, name: 'Band width', marker: { color: COLOURS.bars }, opacity: 0.6, hovertemplate: '%{x:.0f} Hz: %{y:.0f} %<extra></extra>' }];
    for (const name of ['mix', 'reference']) {
      if (spectra[name]) {
        traces.push(line(centres, spectra[name].side_minus_mid_db, `Side − mid, ${name === 'mix' ? 'your mix' : 'reference'}`, COLOURS[name],
          { yaxis: 'y2', mode: 'lines+markers', hovertemplate: '%{x:.0f} Hz: %{y:.1f} dB<extra></extra>' }));
      }
    }
    draw('width', traces, {
      xaxis: FREQ_AXIS, yaxis: { title: { text: 'Width (%)' }, rangemode: 'tozero' },
      yaxis2: { title: { text: 'Side − mid (dB)' }, overlaying: 'y', side: 'right', showgrid: false },
      margin: { r: 56 },
    });
  }

  function refresh() {
    if (!explanation || !explanation.tracks || !selected || !window.Plotly) {
      root.hidden = true;
      return;
    }
    root.hidden = false;
    if (selected.key === 'master') {
      showMaster(explanation.master);
      return;
    }
    const index = Number(selected.key);
    const stem = selected.stems[index];
    // The version's tracks are in the stem order it rendered; a stem renamed or added since is found by name.
    const track = explanation.tracks[index] && (!stem || explanation.tracks[index].name === stem.name)
      ? explanation.tracks[index] : explanation.tracks.find((candidate) => stem && candidate.name === stem.name);
    if (!track) {
      title.textContent = `What the mix did: ${stem ? stem.name : 'this track'}`;
      summary.textContent = 'This track is not in the open version: render it to see what its strip does.';
      for (const key of Object.keys(plots)) draw(key, null);
      return;
    }
    showTrack(track, explanation.eq_freqs_hz, explanation.duration_s);
  }

  /** Fetch what version n did; the row shown follows select(). */
  async function load(projectId, number) {
    const mine = ++token;
    explanation = null;
    refresh();
    let data;
    try {
      data = await api.getExplanation(projectId, number);
    } catch (error) {
      if (mine === token) {
        root.hidden = false;
        title.textContent = 'What the mix did';
        summary.textContent = `Could not be loaded: ${error.message}`;
      }
      return;
    }
    if (mine !== token) return;
    explanation = data;
    refresh();
  }

  /** key: the console row selected ('0', '1', … or 'master'); stems: the project's stems in row order. */
  function select(key, stems) {
    selected = { key, stems };
    refresh();
  }

  return { load, select };
}
