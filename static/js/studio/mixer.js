// Step 4: a compact console, one row per track (fader, pan, mute/solo and the level the open version
// measured) and one for the master bus, all in view at 40 tracks; the rest of the parameter schema
// (EQ, compressor, the master's stages) opens as a channel strip for the one selected row.
// The model keeps exact values (the automatic mix's numbers are not on the slider grid); sliders
// only show them, so an untouched parameter goes back to the server unchanged.
import { h } from '../dom.js';
import { formatValue, fromSlider, sameValue, sliderRange, toSlider } from './params.js';

// The parameter groups a console row shows itself; the details strip shows the others.
const ROW_GROUPS = new Set(['gain', 'pan']);
// The meter's span: a track's loudness in the mix after its fader.
const METER_MIN_LUFS = -60;
const METER_MAX_LUFS = 0;
const KEYS_HINT = 'Keys on a track row: ↑ ↓ move between tracks (Home, End: first, last) · Enter opens its details · Esc goes back to the row · M mute · S solo.';

const GROUP_TITLES = {
  gain: 'Gain', eq: 'EQ', compressor: 'Compressor', pan: 'Pan',
  'master eq': 'EQ', 'master compressor': 'Compressor', 'master expander': 'Expander', 'master match eq': 'Match EQ', 'master match eq lr': 'Match EQ left/right',
  'master band width': 'Band width', 'master output': 'Output', reverb: 'Reverb send', 'master reverb': 'Reverb bus',
  'neural tone': 'Neural tone (experimental)',
};
const TONE = 'tone_amount_pct';
const TONE_NOTE = 'A network trained for the track\'s family reshapes its spectrum before the EQ; it keeps the raw phase, so transients can smear. Off at 0 %.';
const isCollapsible = (group) => /eq|compressor|expander|band width/.test(group);
// Parametric EQ labels read "<band> <setting>"; the match EQ's are one gain per band, labelled by frequency.
const isBandGroup = (group) => group === 'eq' || group === 'master eq';

function valuesFrom(specs, source) {
  const values = {};
  for (const spec of specs) {
    const value = source ? Number(source[spec.name]) : NaN;
    values[spec.name] = Number.isFinite(value) ? value : spec.default;
  }
  return values;
}

// Tracks of a preset are matched to stems by name, then by position, as the server does.
function presetTrack(preset, stem, index) {
  const tracks = (preset && preset.tracks) || [];
  const byName = tracks.find((track) => track.name === stem.name);
  return (byName || tracks[index] || {}).params;
}

function sameSet(a, b) {
  return a.size === b.size && [...a].every((item) => b.has(item));
}

/** ctx: {onChange()} called after any edit; onSelect(key) when a row ('0', '1', … or 'master') is selected;
 * onFamily(stem, family) stores a track's family (a promise of the updated stem). */
export function createMixer(root, ctx) {
  let schema = null;
  let stems = [];
  // Per stem id (and 'master'): {values, auto, base}; base is what the open version rendered.
  const models = new Map();
  let muted = new Set();
  let solo = new Set();
  let baseMuted = new Set();
  let baseSolo = new Set();
  const controls = new Map(); // `${key}:${name}` -> {spec, model, input, output, row}
  let levels = new Map(); // stem id (and 'master') -> loudness in LUFS measured in the open version
  let selected = '0';
  const list = h('div', { class: 'console', 'data-testid': 'console', 'aria-label': 'Tracks' });
  const details = h('div', { class: 'console-details', 'data-testid': 'console-details' });
  const hint = h('p', { class: 'muted small mixer-hint', 'data-testid': 'mixer-hint' }, KEYS_HINT);

  function setSchema(value) {
    schema = value;
  }

  // The families and their tone models come from the server (mixing/tone), so names and reasons are said once.
  const familyInfo = (name) => (schema.families || []).find((family) => family.name === name);
  const toneReason = (stem) => {
    if (!stem.family) return 'no family chosen yet';
    const info = familyInfo(stem.family);
    if (!info) return `unknown family ${stem.family}`;
    return info.tone_model ? null : info.reason;
  };

  /** Take the parameters, automatic values and mute/solo of a version for these stems. */
  function load(version, stemList) {
    stems = stemList;
    models.clear();
    stems.forEach((stem, index) => {
      const rendered = presetTrack(version.params, stem, index);
      const values = valuesFrom(schema.track, rendered);
      // A stem added after this version was rendered is not in it yet: it counts as a change.
      models.set(stem.id, { values, base: rendered ? { ...values } : null, auto: valuesFrom(schema.track, presetTrack(version.auto_params, stem, index)), family: stem.family });
    });
    const master = valuesFrom(schema.master, version.params && version.params.master);
    models.set('master', { values: master, base: { ...master }, auto: valuesFrom(schema.master, version.auto_params && version.auto_params.master) });
    const analysis = version.analysis || {};
    levels = new Map((analysis.track_levels || []).map((track) => [String(track.stem), track.loudness_lufs]));
    levels.set('master', (analysis.loudness_lufs || {}).mix);
    muted = new Set(version.muted || []);
    solo = new Set(version.solo || []);
    baseMuted = new Set(muted);
    baseSolo = new Set(solo);
    build();
  }

  /** Stems were added, removed or renamed: keep the edits of the stems that stay. */
  function setStems(stemList) {
    stems = stemList;
    for (const stem of stems) {
      if (!models.has(stem.id)) {
        const values = valuesFrom(schema.track, null);
        models.set(stem.id, { values, base: null, auto: { ...values }, family: stem.family });
      }
    }
    const ids = new Set(stems.map((stem) => stem.id));
    muted = new Set([...muted].filter((id) => ids.has(id)));
    solo = new Set([...solo].filter((id) => ids.has(id)));
    build();
  }

  function build() {
    controls.clear();
    const rows = stems.map((stem, index) => consoleRow(String(index), stem));
    rows.push(consoleRow('master', null));
    const stripSpecs = schema.track.filter((spec) => !ROW_GROUPS.has(spec.group));
    const strips = stems.map((stem, index) => strip(String(index), stem, stripSpecs, models.get(stem.id)));
    strips.push(strip('master', null, schema.master, models.get('master')));
    list.replaceChildren(...rows);
    details.replaceChildren(...strips);
    root.replaceChildren(hint, list, details);
    for (const group of root.querySelectorAll('.group')) group.classList.toggle('has-changes', !!group.querySelector('.param.is-changed'));
    for (const row of rows) markRowChanges(row.dataset.row);
    select(rows.some((row) => row.dataset.row === selected) ? selected : '0');
    refreshSolo();
    ctx.onChange();
  }

  const rowOf = (key) => list.querySelector(`[data-row="${key}"]`);
  const controlOf = (key, name) => controls.get(`${key}:${name}`);

  /** Select a row: its details strip is the one shown. */
  function select(key, { focus = false } = {}) {
    selected = key;
    for (const row of list.children) {
      const on = row.dataset.row === key;
      row.setAttribute('aria-current', String(on));
      row.tabIndex = on ? 0 : -1;
      if (on && focus) row.focus();
    }
    for (const el of details.children) el.hidden = el.dataset.strip !== key;
    ctx.onSelect?.(key);
  }

  function openDetails(key) {
    select(key);
    details.querySelector(`[data-strip="${key}"]`)?.querySelector('summary, input:enabled, button:enabled')?.focus();
  }

  function markRowChanges(key) {
    const row = rowOf(key);
    if (!row) return;
    const detail = details.querySelector(`[data-strip="${key}"]`);
    row.classList.toggle('has-changes', !!(row.querySelector('.param.is-changed') || detail?.querySelector('.param.is-changed')));
  }

  function meter(lufs, name) {
    const known = Number.isFinite(lufs);
    const fraction = known ? Math.min(1, Math.max(0, (lufs - METER_MIN_LUFS) / (METER_MAX_LUFS - METER_MIN_LUFS))) : 0;
    const fill = h('span', { class: 'meter-fill' });
    fill.style.width = `${(fraction * 100).toFixed(1)}%`;
    return h('span', {
      class: 'console-meter', role: 'meter', 'aria-label': `Level of ${name} in this version`,
      'aria-valuemin': String(METER_MIN_LUFS), 'aria-valuemax': String(METER_MAX_LUFS),
      'aria-valuenow': known ? lufs.toFixed(1) : null, 'aria-valuetext': known ? `${lufs.toFixed(1)} LUFS` : 'not measured',
    }, h('span', { class: 'meter-bar', 'aria-hidden': 'true' }, fill), h('span', { class: 'meter-value' }, known ? `${lufs.toFixed(1)} LUFS` : '—'));
  }

  function consoleRow(key, stem) {
    const title = stem ? stem.name : 'Master';
    const model = models.get(stem ? stem.id : 'master');
    const family = stem ? stem.family || 'other' : 'master';
    const cells = [
      h('span', { class: 'strip-no', 'aria-hidden': 'true' }, stem ? String(Number(key) + 1) : 'M'),
      h('span', { class: 'console-name', id: `strip-title-${key}`, title }, title,
        h('span', { class: 'group-dot', 'aria-hidden': 'true' })),
    ];
    if (stem) {
      cells.push(familySelect(key, stem), toggle('M', 'Mute', stem, muted, 'mute'), toggle('S', 'Solo', stem, solo, 'solo'));
      for (const spec of schema.track.filter((item) => ROW_GROUPS.has(item.group))) {
        const param = paramRow(key, spec, model, null);
        param.classList.add(`console-${spec.group}`);
        param.querySelector('label').classList.add('visually-hidden');
        cells.push(param);
      }
    }
    cells.push(meter(levels.get(stem ? stem.id : 'master'), title));
    const row = h('div', {
      class: `console-row family-${family}`, role: 'group', 'aria-labelledby': `strip-title-${key}`, tabindex: '-1',
      'data-row': key, 'data-testid': `console-row-${key}`,
    }, ...cells);
    if (stem) row.dataset.stemId = stem.id;
    row.addEventListener('click', () => select(key));
    row.addEventListener('keydown', (event) => rowKey(event, key, stem));
    return row;
  }

  function familySelect(key, stem) {
    const options = (schema.families || []).map((family) => h('option', { value: family.name }, family.name));
    if (!stem.family) options.unshift(h('option', { value: '' }, '—'));
    const select = h('select', {
      class: 'console-family', 'aria-label': `Family of ${stem.name}`, title: 'Instrument family: its neural tone model and colour',
      'data-testid': `family-${key}`,
    }, ...options);
    select.value = stem.family || '';
    select.addEventListener('click', (event) => event.stopPropagation());
    select.addEventListener('change', async () => {
      select.disabled = true;
      try {
        const updated = await ctx.onFamily(stem, select.value);
        stem.family = updated.family;
        const row = rowOf(key);
        row.className = row.className.replace(/\bfamily-\S+/, `family-${stem.family || 'other'}`);
        refreshTone(key, stem);
        markRowChanges(key);
        ctx.onChange();
      } catch {
        select.value = stem.family || '';
      } finally {
        select.disabled = false;
      }
    });
    return select;
  }

  /** The tone slider of a track: usable only where its family has a model, else disabled with the reason. */
  function refreshTone(key, stem) {
    const control = controlOf(key, TONE);
    if (!control) return;
    const reason = toneReason(stem);
    control.input.disabled = !!reason;
    control.row.querySelector('.tone-reason').textContent = reason ? `Unavailable: ${reason}.` : `Model: ${stem.family}.`;
  }

  function rowKey(event, key, stem) {
    if (event.target !== event.currentTarget) return; // a slider in the row keeps its own arrow keys
    const keys = [...list.children].map((row) => row.dataset.row);
    const at = keys.indexOf(key);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: keys.length - 1 }[event.key];
    if (to !== undefined) {
      event.preventDefault();
      select(keys[Math.min(keys.length - 1, Math.max(0, to))], { focus: true });
    } else if (event.key === 'Enter') {
      event.preventDefault();
      openDetails(key);
    } else if (stem && (event.key === 'm' || event.key === 's')) {
      event.preventDefault();
      event.currentTarget.querySelector(`.toggle-${event.key === 'm' ? 'mute' : 'solo'}`).click();
    }
  }

  function strip(key, stem, specs, model) {
    const title = stem ? stem.name : 'Master';
    const titleId = `detail-title-${key}`;
    const head = h('div', { class: 'strip-head' },
      h('span', { class: 'strip-no', 'aria-hidden': 'true' }, stem ? String(Number(key) + 1) : 'M'),
      h('span', { class: 'strip-name', id: titleId, title }, title));

    const body = [];
    let group = null;
    let container = null;
    let band = null;
    for (const spec of specs) {
      if (spec.group !== group) {
        group = spec.group;
        band = null;
        const title = GROUP_TITLES[group] || group;
        if (isCollapsible(group)) {
          container = h('div', { class: 'group-body' });
          body.push(h('details', { class: 'group', 'data-group': group },
            h('summary', {}, title, h('span', { class: 'group-dot', 'aria-hidden': 'true' })), container));
        } else {
          container = h('div', { class: 'group-body' });
          body.push(h('div', { class: 'group group-open', 'data-group': group }, h('p', { class: 'group-title' }, title), container));
        }
      }
      const parts = isBandGroup(group) ? splitBandLabel(spec.label) : null;
      if (parts && parts.band !== band) {
        band = parts.band;
        container.append(h('p', { class: 'band-title', 'aria-hidden': 'true' }, band));
      }
      container.append(paramRow(key, spec, model, parts));
      if (stem && spec.name === TONE) {
        controlOf(key, TONE).row.append(h('p', { class: 'muted small tone-reason', 'data-testid': `tone-reason-${key}` }),
          h('p', { class: 'muted small' }, TONE_NOTE));
        refreshTone(key, stem);
      }
    }
    const el = h('div', { class: `strip${stem ? '' : ' strip-master'}`, role: 'group', 'aria-labelledby': titleId, 'data-strip': key }, head, ...body);
    if (stem) el.dataset.stemId = stem.id;
    el.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        select(key, { focus: true });
      }
    });
    return el;
  }

  // "Band 2 frequency" -> {band: "Band 2", short: "frequency"} so a narrow strip can show "Freq".
  function splitBandLabel(label) {
    const cut = label.lastIndexOf(' ');
    if (cut < 0) return null;
    return { band: label.slice(0, cut), short: label.slice(cut + 1) };
  }

  function shortLabel(word) {
    return word === 'frequency' ? 'Freq' : word.charAt(0).toUpperCase() + word.slice(1);
  }

  function toggle(letter, action, stem, set, kind) {
    const button = h('button', {
      type: 'button', class: `toggle toggle-${kind}`, 'aria-pressed': String(set.has(stem.id)),
      'aria-label': `${action} ${stem.name}`, title: action, 'data-testid': `${kind}-${stems.indexOf(stem)}`,
    }, letter);
    button.addEventListener('click', () => {
      if (set.has(stem.id)) set.delete(stem.id);
      else set.add(stem.id);
      button.setAttribute('aria-pressed', String(set.has(stem.id)));
      refreshSolo();
      ctx.onChange();
    });
    return button;
  }

  function refreshSolo() {
    for (const el of root.querySelectorAll('[data-stem-id]')) {
      const id = el.dataset.stemId;
      el.classList.toggle('is-muted', muted.has(id) || (solo.size > 0 && !solo.has(id)));
    }
  }

  function paramRow(key, spec, model, parts) {
    const id = `param-${key}-${spec.name}`;
    const range = sliderRange(spec);
    const input = h('input', {
      type: 'range', id, class: 'param-slider', min: String(range.min), max: String(range.max), step: String(range.step),
      'data-testid': `slider-${key}-${spec.name}`,
    });
    const label = parts
      ? h('label', { for: id }, h('span', { class: 'visually-hidden' }, `${parts.band} `), shortLabel(parts.short))
      : h('label', { for: id }, spec.label);
    const output = h('output', { for: id, class: 'param-value' });
    const reset = h('button', { type: 'button', class: 'param-reset', title: 'Back to the automatic value', 'aria-label': `Reset ${spec.label} to the automatic value` }, '↺');
    const row = h('div', { class: 'param' }, h('div', { class: 'param-head' }, label, output, reset), input);
    const control = { key, spec, model, input, output, row, reset };
    controls.set(`${key}:${spec.name}`, control);

    const resetToAuto = () => set(control, model.auto[spec.name]);
    input.addEventListener('input', () => set(control, fromSlider(spec, input.value), { fromSlider: true }));
    input.addEventListener('dblclick', resetToAuto);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Delete' || event.key === 'Backspace') {
        event.preventDefault();
        resetToAuto();
      }
    });
    reset.addEventListener('click', resetToAuto);
    show(control);
    return row;
  }

  function set(control, value, { fromSlider: moved = false } = {}) {
    control.model.values[control.spec.name] = value;
    show(control, moved);
    ctx.onChange();
  }

  function show(control, moved = false) {
    const { spec, model, input, output, row, reset } = control;
    const value = model.values[spec.name];
    if (!moved) input.value = String(toSlider(spec, value));
    const text = formatValue(spec, value);
    output.textContent = text;
    input.setAttribute('aria-valuetext', text);
    const atAuto = sameValue(spec, value, model.auto[spec.name]);
    row.classList.toggle('is-changed', !atAuto);
    reset.disabled = atAuto;
    const group = row.closest('.group');
    if (group) group.classList.toggle('has-changes', !!group.querySelector('.param.is-changed'));
    if (row.isConnected) markRowChanges(control.key);
  }

  function paramsDirty(specs, model) {
    if (!model.base) return true;
    return specs.some((spec) => !sameValue(spec, model.values[spec.name], model.base[spec.name]));
  }

  // A new family changes the sound only where the track's tone stage is on.
  const familyDirty = (stem, model) => stem.family !== model.family && model.values[TONE] > 0;

  /** Number of strips whose parameters, family (tone on) or mute/solo differ from the open version. */
  function changes() {
    if (!schema || !stems.length) return 0;
    let count = stems.filter((stem) => paramsDirty(schema.track, models.get(stem.id)) || familyDirty(stem, models.get(stem.id))).length;
    if (paramsDirty(schema.master, models.get('master'))) count += 1;
    if (!sameSet(muted, baseMuted) || !sameSet(solo, baseSolo)) count += 1;
    return count;
  }

  function revert() {
    for (const model of models.values()) if (model.base) Object.assign(model.values, model.base);
    muted = new Set(baseMuted);
    solo = new Set(baseSolo);
    build();
  }

  /** Move one slider: ``track`` a stem index (null: the master bus). False when there is no such slider. */
  function setValue(track, name, value) {
    const control = controls.get(`${track === null ? 'master' : String(track)}:${name}`);
    if (!control || !Number.isFinite(value)) return false;
    set(control, value);
    return true;
  }

  /** Per track in stem order: its fader and pan now, and whether its mute (or another track's solo) silences it. */
  function trackStates() {
    return stems.map((stem) => {
      const { values } = models.get(stem.id);
      return { gain_db: values.gain_db, pan_pct: values.pan_pct, silent: muted.has(stem.id) || (solo.size > 0 && !solo.has(stem.id)) };
    });
  }

  /** The render request body for POST /render/: the full preset, mute and solo lists. */
  function renderBody(schemaVersion, baseVersion) {
    return {
      params: {
        schema_version: schemaVersion,
        tracks: stems.map((stem) => ({ name: stem.name, params: { ...models.get(stem.id).values } })),
        master: { ...models.get('master').values },
      },
      muted: stems.filter((stem) => muted.has(stem.id)).map((stem) => stem.id),
      solo: stems.filter((stem) => solo.has(stem.id)).map((stem) => stem.id),
      base_version: baseVersion,
    };
  }

  return { setSchema, load, setStems, changes, revert, renderBody, setValue, trackStates };
}
