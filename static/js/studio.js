// The studio page: upload -> instant mix -> see -> shape -> hear -> download. This module owns the
// page state (project, schema, open version) and wires the section modules together.
import * as api from './api.js';
import { $, bindDropZone, h } from './dom.js';
import { createAdvice } from './studio/advice.js';
import { createAnalysis } from './studio/analysis.js';
import { createCharts } from './studio/charts.js';
import { createExplain } from './studio/explain.js';
import { createJobs } from './studio/jobs.js';
import { createMixer } from './studio/mixer.js';
import { reportError } from './studio/notify.js';
import { createPlayer } from './studio/player.js';
import { createPreflight } from './studio/preflight.js';
import { createPreview } from './studio/preview.js';
import { createStrength } from './studio/strength.js';
import { createUpload } from './studio/upload.js';
import { createVersions } from './studio/versions.js';

const STATUS_LABELS = {
  empty: 'Empty', needs_stems: 'Needs stems', needs_reference: 'Needs a reference', ready: 'Ready to mix',
  mixing: 'Working…', mixed: 'Mixed', changed: 'New inputs since the mix', failed: 'Failed',
};
const METHOD_LABELS = { auto: 'automatic mix', manual: 'your changes', preset: 'from a preset' };
const UNFINISHED = new Set(['queued', 'running']);

const root = $('#studio');
const projectId = root.dataset.projectId;
const state = { project: null, schema: null, version: null, compare: null, busy: false };
let openToken = 0;

const byPosition = (a, b) => a.position - b.position;

const upload = createUpload(root, {
  projectId,
  onStemsAdded(stems) {
    state.project.stems = [...state.project.stems, ...stems].sort(byPosition);
    stemsChanged();
  },
  onStemRenamed(stem) {
    state.project.stems = state.project.stems.map((s) => (s.id === stem.id ? stem : s));
    stemsChanged();
  },
  onStemRemoved(stemId) {
    state.project.stems = state.project.stems.filter((s) => s.id !== stemId);
    stemsChanged();
    refreshProject();
    checkStems();
  },
  // The badge is the server's verdict on the inputs: fetched again after every change of them.
  onReference(reference) {
    state.project.reference = reference;
    upload.render(state.project);
    refreshMixButton();
    refreshPlayer();
    refreshProject();
    checkStems();
  },
  onUploadsSettled() {
    refreshProject();
    checkStems();
  },
});

const preflight = createPreflight($('#preflight'), {
  projectId,
  onFixed(result, finding) {
    state.project.stems = result.stem
      ? state.project.stems.map((s) => (s.id === result.stem.id ? result.stem : s))
      : state.project.stems.filter((s) => s.id !== finding.track);
    stemsChanged();
  },
});

/** The preflight report follows the stems (and the reference, which a stem may turn out to be). */
function checkStems() {
  if (state.project && state.project.stems.length) preflight.run();
  else preflight.clear();
}

const jobs = createJobs({
  panel: $('#job-panel'),
  anchors: { mix: $('#mix-job-anchor'), render: $('#render-job-anchor'), preset: $('#preset-job-anchor'), stems: $('#stems-job-anchor'), preview: $('#preview-job-anchor') },
  // The project is refetched before the version opens: the job may have deleted the reference's audio, which
  // the player must then not ask for.
  async onSucceeded(job) {
    await refreshProject();
    if (job.kind === 'stems') {
      if (state.version) openVersion(state.version.number);  // its downloads now hold the ZIP
      return;
    }
    if (job.version) openVersion(job.version);
  },
  onBusyChange(busy) {
    state.busy = busy;
    refreshMixButton();
    refreshRenderButton();
    $('#preset-input').disabled = busy;
    $('#stems-button').disabled = busy;
    $('#preview-button').disabled = busy;
    if (!busy) refreshProject();
  },
});

const explanation = createExplain($('#explain'));
const mixer = createMixer($('#mixer'), {
  onChange() {
    refreshRenderButton();
    preview.refresh();
  },
  onSelect: (key) => explanation.select(key, state.project.stems),
  async onFamily(stem, family) {
    try {
      return await api.setStemFamily(projectId, stem.id, family);
    } catch (error) {
      reportError('Changing the family', error);
      throw error;
    }
  },
});
const preview = createPreview({
  button: $('#preview-button'), indicator: $('#preview-indicator'), clock: $('#player audio[data-source="mix"]'),
  mixer: $('#mixer'), getTracks: () => mixer.trackStates(),
  onPrepare: () => state.version && jobs.start('preview', () => api.startPreview(projectId, state.version.number)),
});
const strength = createStrength($('#strength'), {
  onChange: (strengthsPct) => jobs.start('render', () => api.startStrength(
    projectId, { strengths_pct: strengthsPct, base_version: state.version.number })),
});
const charts = createCharts($('#charts'));
const analysis = createAnalysis({ table: $('#features-table'), readings: $('#readings') });
const advice = createAdvice({
  list: $('#advice'), empty: $('#advice-empty'),
  onApply: (changes) => changes.map((change) => mixer.setValue(change.track, change.param, change.value)).every(Boolean),
});
const player = createPlayer($('#player'));
const versions = createVersions($('#versions'), {
  onOpen: (number) => openVersion(number),
  onCompare(number) {
    state.compare = number;
    refreshPlayer();
    refreshVersions();
  },
});

function setProject(project) {
  const stemsBefore = state.project ? stemKey(state.project.stems) : null;
  state.project = { ...project, stems: [...project.stems].sort(byPosition) };
  document.title = `${project.name || 'Untitled'} · Mixref`;
  const title = $('#studio-project-name');
  if (document.activeElement !== title) title.value = project.name;
  const badge = $('#project-status');
  badge.textContent = STATUS_LABELS[project.status] || project.status;
  badge.dataset.status = project.status;
  upload.render(state.project);
  showReferencePrivacy(state.project);
  refreshMixButton();
  refreshVersions();
  if (state.version && stemsBefore !== stemKey(state.project.stems)) mixer.setStems(state.project.stems);
}

const stemKey = (stems) => stems.map((s) => `${s.id}:${s.name}`).join('|');

function stemsChanged() {
  upload.render(state.project);
  refreshMixButton();
  if (state.version) mixer.setStems(state.project.stems);
}

async function refreshProject() {
  try {
    setProject(await api.getProject(projectId));
  } catch (error) {
    reportError('Loading the project', error);
  }
}

function refreshMixButton() {
  const { stems, reference } = state.project;
  const button = $('#mix-button');
  button.disabled = state.busy || !stems.length || !reference;
  let hint = 'Ready: it takes about a minute.';
  if (state.busy) hint = 'Working — see the progress below.';
  else if (!stems.length && !reference) hint = 'Add stems and a reference song to start.';
  else if (!stems.length) hint = 'Add at least one stem.';
  else if (!reference) hint = 'Add a reference song: the mix will be shaped after it.';
  else if (state.project.versions.length) hint = 'Mixing again starts over from the automatic settings, as a new version.';
  $('#mix-hint').textContent = hint;
}

function refreshRenderButton() {
  const changed = state.version ? mixer.changes() : 0;
  $('#render-button').disabled = state.busy || changed === 0;
  $('#revert-button').disabled = changed === 0;
  $('#changes-text').textContent = changed === 0
    ? `No changes to version ${state.version ? state.version.number : ''}.`
    : `${changed} ${changed === 1 ? 'change' : 'changes'} not rendered yet.`;
}

function refreshVersions() {
  versions.render(state.project.versions || [], state.version && state.version.number, state.compare);
}

function showReferencePrivacy(project) {
  $('#delete-reference-audio').checked = project.delete_reference_audio;
  const reference = project.reference;
  let text = '';
  if (reference && !reference.audio_kept) {
    text = 'The reference\'s audio has been deleted; only its measurements are kept. Re-renders still compare with it; the player cannot play it, and a new automatic mix needs it uploaded again.';
  } else if (reference && project.delete_reference_audio) {
    text = 'The reference\'s audio will be deleted once the first mix has analysed it.';
  }
  $('#reference-privacy').textContent = text;
}

function refreshPlayer() {
  const version = state.version;
  if (!version) return;
  const reference = state.project.reference;
  const baselineLufs = ((version.analysis || {}).loudness_lufs || {}).baseline;
  const compare = (state.project.versions || []).find((summary) => summary.number === state.compare);
  player.setSources({
    mix: { url: version.audio_url, lufs: version.loudness_lufs, label: `Mix v${version.number}` },
    // The query changes when the file does, so the browser never plays a stale cached copy.
    reference: reference && reference.audio_kept ? { url: `${api.referenceAudioUrl(projectId)}?f=${encodeURIComponent(reference.filename)}`, lufs: reference.loudness_lufs, label: 'Reference' } : null,
    baseline: { url: `${api.baselineAudioUrl(projectId)}?v=${version.number}`, lufs: baselineLufs, label: 'Baseline' },
    compare: compare ? { url: api.versionAudioUrl(projectId, compare.number), lufs: compare.loudness_lufs, label: `v${compare.number}` } : null,
  });
}

function showVersionSections(visible) {
  for (const [empty, body] of [['#see-empty', '#see-body'], ['#shape-empty', '#shape-body'], ['#hear-empty', '#player'], ['#download-empty', '#downloads']]) {
    $(empty).hidden = visible;
    $(body).hidden = !visible;
  }
}

function showDownloads(version) {
  const links = version.downloads || {};
  for (const format of ['wav24', 'wav16', 'flac', 'preset', 'stems']) {
    const link = $(`#download-${format}`);
    if (links[format]) link.href = links[format];
    else link.removeAttribute('href');
  }
  $('#download-stems').hidden = !links.stems;
  $('#stems-button').hidden = Boolean(links.stems);
}

/** Open version n: sliders take its parameters; charts, numbers, players and downloads follow. */
async function openVersion(number) {
  const mine = ++openToken;
  let version;
  try {
    version = await api.getVersion(projectId, number);
  } catch (error) {
    if (mine === openToken) reportError(`Opening version ${number}`, error);
    return;
  }
  if (mine !== openToken) return;
  state.version = version;
  if (state.compare === number) state.compare = null;
  $('#current-version').textContent = `Version ${version.number} · ${METHOD_LABELS[version.method] || version.method}`;
  showVersionSections(true);
  mixer.load(version, state.project.stems);
  strength.load(version);
  analysis.show(version.analysis);
  advice.show((version.analysis || {}).advice);
  showDownloads(version);
  refreshVersions();
  refreshPlayer();
  charts.load(projectId, number);
  explanation.load(projectId, number);
  preview.load(projectId, version);
}

function startRender() {
  const body = mixer.renderBody(state.schema.schema_version, state.version.number);
  jobs.start('render', () => api.startRender(projectId, body));
}

async function applyPreset(file) {
  const box = $('#preset-error');
  box.hidden = true;
  let job;
  try {
    job = await api.uploadPreset(projectId, file);
  } catch (error) {
    const details = Object.entries(error.details || {}).map(([key, value]) => h('li', {}, `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`));
    box.replaceChildren(h('p', {}, h('strong', {}, `“${file.name}” was not applied. `), error.message), details.length ? h('ul', {}, details) : '');
    box.hidden = false;
    return;
  }
  jobs.follow(job, { where: 'preset', relaunch: () => applyPreset(file) });
}

function bindControls() {
  $('#mix-button').addEventListener('click', () => jobs.start('mix', () => api.startMix(projectId)));
  $('#render-button').addEventListener('click', startRender);
  $('#revert-button').addEventListener('click', () => mixer.revert());
  $('#delete-reference-audio').addEventListener('change', async (event) => {
    try {
      setProject(await api.setReferencePrivacy(projectId, event.target.checked));
    } catch (error) {
      event.target.checked = !event.target.checked;
      reportError('Changing the privacy option', error);
    }
  });
  $('#stems-button').addEventListener('click', () => {
    if (state.version) jobs.start('stems', () => api.startStems(projectId, state.version.number));
  });
  bindDropZone($('#preset-zone'), $('#preset-input'), (files) => applyPreset(files[0]));

  const title = $('#studio-project-name');
  const saveTitle = async () => {
    const name = title.value.trim();
    if (!name || name === state.project.name) {
      title.value = state.project.name;
      return;
    }
    try {
      setProject(await api.renameProject(projectId, name));
    } catch (error) {
      title.value = state.project.name;
      reportError('Renaming the project', error);
    }
  };
  title.addEventListener('blur', saveTitle);
  title.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') title.blur();
    if (event.key === 'Escape') {
      title.value = state.project.name;
      title.blur();
    }
  });
}

// A job found running after a reload can be retried only as what it was; a preset needs its file again.
function relaunchFor(job) {
  if (job.kind === 'mix') return () => jobs.start('mix', () => api.startMix(projectId));
  if (job.kind === 'render') return () => state.version && startRender();
  if (job.kind === 'stems') return () => state.version && jobs.start('stems', () => api.startStems(projectId, state.version.number));
  return null;
}

async function init() {
  bindControls();
  let project;
  try {
    [project, state.schema] = await Promise.all([api.getProject(projectId), api.getSchema()]);
  } catch (error) {
    root.prepend(h('p', { class: 'error-banner', role: 'alert' }, `This project could not be loaded: ${error.message}`));
    return;
  }
  mixer.setSchema(state.schema);
  setProject(project);
  checkStems();
  if (project.current_version) openVersion(project.current_version);
  const job = project.active_job;
  if (job && UNFINISHED.has(job.status)) jobs.follow(job, { relaunch: relaunchFor(job) });
}

init();
