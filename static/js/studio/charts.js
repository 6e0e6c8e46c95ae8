// Step 3, charts: the server sends complete Plotly figures; the page only adapts their colours to
// the dark studio and lets Plotly size them to their cards.
import * as api from '../api.js';
import { h } from '../dom.js';

const CHARTS = [
  { key: 'spectrograms', title: 'Spectrograms — your mix and the reference', wide: true },
  { key: 'spectra', title: 'Spectrum — mix, reference and baseline' },
  { key: 'features', title: 'Feature comparison' },
  { key: 'levels', title: 'Track levels', wide: true },
];

const THEME = {
  text: '#c9d1db',
  grid: 'rgba(255, 255, 255, 0.08)',
  zero: 'rgba(255, 255, 255, 0.18)',
  plot: 'rgba(255, 255, 255, 0.02)',
};

// Only colours the figure does not set itself are changed, so the server keeps the final word.
export function themed(layout = {}) {
  const out = { ...layout };
  delete out.width; // a fixed width would defeat the responsive cards
  out.paper_bgcolor = layout.paper_bgcolor || 'rgba(0, 0, 0, 0)';
  out.plot_bgcolor = layout.plot_bgcolor || THEME.plot;
  out.font = { color: THEME.text, ...(layout.font || {}) };
  out.margin = { l: 56, r: 16, t: 36, b: 44, ...(layout.margin || {}) };
  out.legend = { bgcolor: 'rgba(0, 0, 0, 0)', ...(layout.legend || {}) };
  for (const key of Object.keys(out)) {
    if (/^[xy]axis\d*$/.test(key)) out[key] = { gridcolor: THEME.grid, zerolinecolor: THEME.zero, linecolor: THEME.grid, ...out[key] };
  }
  return out;
}

export function createCharts(root) {
  let token = 0;
  const cards = new Map();
  function cardFor(chart) {
    if (!cards.has(chart.key)) {
      const plot = h('div', { class: 'chart-plot', 'data-chart': chart.key });
      const card = h('figure', { class: `chart${chart.wide ? ' chart-wide' : ''}` }, h('figcaption', {}, chart.title), plot);
      root.append(card);
      cards.set(chart.key, { card, plot });
    }
    return cards.get(chart.key);
  }

  function message(text, isError = false) {
    root.querySelector('.chart-message, .error-text')?.remove();
    root.prepend(h('p', { class: isError ? 'error-text' : 'muted chart-message' }, text));
  }

  async function load(projectId, versionNumber) {
    const mine = ++token;
    root.setAttribute('aria-busy', 'true');
    if (!root.querySelector('.chart')) message('Drawing the charts…');
    let figures;
    try {
      figures = await api.getCharts(projectId, versionNumber);
    } catch (error) {
      if (mine === token) message(`The charts could not be loaded: ${error.message}`, true);
      return;
    } finally {
      if (mine === token) root.setAttribute('aria-busy', 'false');
    }
    if (mine !== token) return;
    if (!window.Plotly) {
      message('The chart library did not load, so the charts cannot be drawn. Reload the page to try again.', true);
      return;
    }
    root.querySelector('.chart-message, .error-text')?.remove();
    for (const chart of CHARTS) {
      const figure = figures[chart.key];
      const { card, plot } = cardFor(chart);
      card.hidden = !figure;
      // react() updates the same div in place, so opening another version does not pile up plots.
      if (figure) window.Plotly.react(plot, figure.data || [], themed(figure.layout), { responsive: true, displaylogo: false });
    }
  }

  return { load };
}
