// One job at a time per project: start it, poll GET /api/jobs/<id>/ and show a progress bar with
// the stage where the user started it. The panel is a single element moved between sections so
// that it keeps one set of test hooks.
import * as api from '../api.js';

const POLL_MS = 700;
// Consecutive failed polls (about 10 s) before the page admits it lost contact.
const MAX_MISSES = 14;

const KIND_LABELS = { mix: 'Mixing', render: 'Re-rendering', analyse: 'Analysing', preset: 'Applying preset', stems: 'Exporting stems', preview: 'Preparing the live preview' };
const STATUS_TEXT = { queued: 'waiting for a free worker…', running: 'working…' };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * anchors: {mix, render, preset} elements the panel moves into.
 * onSucceeded(job) runs once per finished job; onBusyChange(busy) whenever a job starts or stops.
 */
export function createJobs({ panel, anchors, onSucceeded, onBusyChange }) {
  const status = panel.querySelector('[data-testid="job-status"]');
  const bar = panel.querySelector('[data-testid="job-progress"]');
  const fill = bar.querySelector('.progress-fill');
  const text = bar.querySelector('.progress-text');
  const failure = panel.querySelector('#job-failure');
  const errorText = panel.querySelector('#job-error');
  const retryButton = panel.querySelector('#job-retry');
  // A job stuck behind a lost worker would otherwise block the project until the sweeper finds it.
  const cancelButton = panel.querySelector('#job-cancel');

  let token = 0;
  let busy = false;
  let retry = null;

  retryButton.addEventListener('click', () => retry && retry());
  let following = null;
  cancelButton.addEventListener('click', async () => {
    if (!following) return;
    cancelButton.disabled = true;
    try {
      await api.cancelJob(following);  // the next poll shows it failed, "Cancelled."
    } catch (error) {
      status.textContent = `Could not cancel: ${error.message}`;
    }
  });

  function setBusy(value) {
    if (busy === value) return;
    busy = value;
    onBusyChange(busy);
  }

  function place(where) {
    const anchor = anchors[where] || anchors.mix;
    if (panel.parentElement !== anchor) anchor.append(panel);
    panel.hidden = false;
  }

  function showProgress(fraction, message) {
    const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    bar.setAttribute('aria-valuenow', String(pct));
    bar.setAttribute('aria-valuetext', `${pct}% — ${message}`);
    fill.style.width = `${pct}%`;
    text.textContent = `${pct}%`;
    status.textContent = message;
  }

  function showFailure(message, onRetry, retryLabel = 'Try again') {
    panel.classList.add('is-failed');
    failure.hidden = false;
    errorText.textContent = message;
    retry = onRetry;
    retryButton.hidden = !onRetry;
    retryButton.textContent = retryLabel;
    setBusy(false);
  }

  function clearFailure() {
    panel.classList.remove('is-failed', 'is-done');
    failure.hidden = true;
    retry = null;
  }

  function describe(job, label) {
    if (job.status === 'succeeded') return job.version ? `Done — version ${job.version} is ready.` : 'Done.';
    if (job.status === 'failed') return `${label} failed.`;
    return `${label}: ${job.stage || STATUS_TEXT[job.status] || job.status}`;
  }

  async function follow(job, { where = job.kind, label = KIND_LABELS[job.kind] || 'Working', relaunch = null } = {}) {
    const mine = ++token;
    place(where);
    clearFailure();
    setBusy(true);
    let misses = 0;
    for (;;) {
      if (mine !== token) return;
      const unfinished = job.status === 'queued' || job.status === 'running';
      following = unfinished ? job.id : null;
      cancelButton.hidden = !unfinished;
      cancelButton.disabled = false;
      const progress = job.status === 'succeeded' ? 1 : Number(job.progress) || 0;
      showProgress(progress, describe(job, label));
      if (job.status === 'succeeded') {
        panel.classList.add('is-done');
        setBusy(false);
        onSucceeded(job);
        return;
      }
      if (job.status === 'failed') {
        showFailure(job.error || `${label} failed for an unknown reason.`, relaunch);
        return;
      }
      await sleep(POLL_MS);
      try {
        job = await api.getJob(job.id);
        misses = 0;
      } catch (error) {
        misses += 1;
        if (error.status === 404 || misses >= MAX_MISSES) {
          const current = job;
          showFailure(`Lost track of the job: ${error.message}`, () => follow(current, { where, label, relaunch }), 'Check again');
          return;
        }
      }
    }
  }

  /** Start a job with launch() (a promise of a Job) and follow it; relaunching repeats launch. */
  async function start(where, launch) {
    const label = KIND_LABELS[where] || 'Working';
    const again = () => start(where, launch);
    const mine = ++token;
    place(where);
    clearFailure();
    setBusy(true);
    showProgress(0, `${label}: starting…`);
    let job;
    try {
      job = await launch();
    } catch (error) {
      if (mine === token) showFailure(`${label} could not start: ${error.message}`, again);
      return;
    }
    if (mine === token) follow(job, { where, label, relaunch: again });
  }

  return {
    start,
    follow,
    get busy() {
      return busy;
    },
  };
}
