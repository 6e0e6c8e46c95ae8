// Step 1: stems and reference. Each stem file goes up in its own request so it gets its own
// progress bar and its own verdict; a rejected file never holds up the others.
import * as api from '../api.js';
import { $, bindDropZone, formatClock, h } from '../dom.js';
import { reportError } from './notify.js';

// One upload at a time: the server numbers tracks in the order they arrive, so the tracks keep
// the order of the file names ("01_Kick", "02_Snare", ...) whatever order they were dropped in.
const PARALLEL_UPLOADS = 1;

function describeStem(stem) {
  const silent = stem.silent ? ' · silent: left out of the mix' : '';
  return `${stem.channels === 1 ? 'mono' : 'stereo'} · ${formatClock(stem.duration_s)}${silent}`;
}

function uploadRow(name) {
  const fill = h('div', { class: 'progress-fill' });
  const bar = h('div', { class: 'progress progress-small', role: 'progressbar', 'aria-label': `Uploading ${name}`, 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, fill);
  const note = h('span', { class: 'upload-note' }, 'waiting…');
  const row = h('li', { class: 'upload-row', 'data-testid': 'upload-row', 'data-state': 'uploading' },
    h('span', { class: 'upload-icon', 'aria-hidden': 'true' }),
    h('span', { class: 'upload-name', title: name }, name),
    bar,
    note);
  return {
    row,
    progress(fraction) {
      const pct = Math.round(fraction * 100);
      fill.style.width = `${pct}%`;
      bar.setAttribute('aria-valuenow', String(pct));
      note.textContent = pct < 100 ? `${pct}%` : 'checking…';
    },
    accepted(message) {
      row.dataset.state = 'accepted';
      bar.remove();
      note.textContent = message;
    },
    rejected(reason) {
      row.dataset.state = 'rejected';
      bar.remove();
      note.className = 'upload-reason';
      note.textContent = reason;
    },
  };
}

function rejectedRow(filename, reason) {
  const item = uploadRow(filename);
  item.rejected(reason);
  return item.row;
}

/**
 * ctx: {projectId, onStemsAdded(stems), onStemRenamed(stem), onStemRemoved(id), onReference(ref), onUploadsSettled()}.
 * Returns {render(project)} to redraw the track list and reference card from the project.
 */
export function createUpload(root, ctx) {
  const stemRows = $('#stem-uploads', root);
  const refRows = $('#reference-upload', root);
  const tracks = $('#tracks', root);
  const queue = [];
  let running = 0;
  // Once every upload is done the log folds to one line; files that were not used stay in view.
  const showLog = h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'data-testid': 'upload-log-toggle', 'aria-expanded': 'false' }, 'Show all');
  const logText = h('span', {});
  const logSummary = h('p', { class: 'upload-summary muted', 'data-testid': 'upload-summary', hidden: true }, logText, ' ', showLog);
  stemRows.before(logSummary);
  showLog.addEventListener('click', () => {
    const folded = stemRows.classList.toggle('is-folded');
    showLog.setAttribute('aria-expanded', String(!folded));
    showLog.textContent = folded ? 'Show all' : 'Fold';
  });

  function foldLog() {
    const rows = [...stemRows.querySelectorAll('.upload-row')];
    const added = rows.filter((row) => row.dataset.state === 'accepted').length;
    const refused = rows.length - added;
    logText.textContent = `${rows.length} ${rows.length === 1 ? 'upload' : 'uploads'} done: ${added} added${refused ? `, ${refused} not used (below)` : ''}.`;
    stemRows.classList.add('is-folded');
    showLog.setAttribute('aria-expanded', 'false');
    showLog.textContent = 'Show all';
    logSummary.hidden = false;
  }

  bindDropZone($('#stems-zone', root), $('#stems-input', root), (files) => {
    stemRows.classList.remove('is-folded');
    logSummary.hidden = true;
    const byName = [...files].sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    for (const file of byName) {
      const item = uploadRow(file.name);
      stemRows.append(item.row);
      queue.push({ file, item });
    }
    pump();
  });

  bindDropZone($('#reference-zone', root), $('#reference-input', root), (files) => {
    // One reference per project: extra files dropped at once are ignored, the first one wins.
    uploadReference(files[0]);
  });

  function pump() {
    while (running < PARALLEL_UPLOADS && queue.length) {
      const { file, item } = queue.shift();
      running += 1;
      uploadStem(file, item).finally(() => {
        running -= 1;
        pump();
        if (running === 0 && !queue.length) {
          foldLog();
          ctx.onUploadsSettled();
        }
      });
    }
  }

  async function uploadStem(file, item) {
    item.progress(0);
    try {
      const answer = await api.uploadStem(ctx.projectId, file, (fraction) => item.progress(fraction));
      const stems = answer.stems || [];
      const rejected = answer.rejected || [];
      if (stems.length) {
        item.accepted(stems.length === 1 ? `added as “${stems[0].name}” (${describeStem(stems[0])})` : `${stems.length} stems added`);
        ctx.onStemsAdded(stems);
      } else if (rejected.length === 1) {
        item.rejected(rejected[0].reason);
      } else {
        item.rejected(rejected.length ? `none of the ${rejected.length} files inside could be used` : 'no usable audio in this file');
      }
      // A ZIP answers for the files inside it: list each reject under it, by name.
      if (stems.length + rejected.length > 1) {
        for (const reject of [...rejected].reverse()) item.row.after(rejectedRow(reject.filename, reject.reason));
      }
    } catch (error) {
      item.rejected(error.message);
    }
  }

  async function uploadReference(file) {
    refRows.replaceChildren();
    const item = uploadRow(file.name);
    refRows.append(item.row);
    item.progress(0);
    try {
      const reference = await api.uploadReference(ctx.projectId, file, (fraction) => item.progress(fraction));
      // The reference card below says it all.
      refRows.replaceChildren();
      ctx.onReference(reference);
    } catch (error) {
      item.rejected(error.message);
    }
  }

  function trackItem(stem, index) {
    const input = h('input', {
      type: 'text', class: 'stem-name', value: stem.name, maxlength: '120', autocomplete: 'off',
      'data-testid': 'stem-name', 'aria-label': `Name of track ${index + 1}`,
    });
    let saved = stem.name;
    const save = async () => {
      const name = input.value.trim();
      if (!name) input.value = saved;
      if (!name || name === saved) return;
      input.disabled = true;
      try {
        const updated = await api.renameStem(ctx.projectId, stem.id, name);
        saved = updated.name;
        input.value = updated.name;
        ctx.onStemRenamed(updated);
      } catch (error) {
        input.value = saved;
        reportError('Renaming the track', error);
      } finally {
        input.disabled = false;
      }
    };
    input.addEventListener('blur', save);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        input.blur();
      } else if (event.key === 'Escape') {
        input.value = saved;
        input.blur();
      }
    });
    const remove = h('button', {
      type: 'button', class: 'btn btn-icon', 'aria-label': `Remove ${stem.name}`, title: 'Remove this track',
      'data-testid': 'stem-remove',
      onclick: async () => {
        remove.disabled = true;
        try {
          await api.deleteStem(ctx.projectId, stem.id);
          ctx.onStemRemoved(stem.id);
        } catch (error) {
          remove.disabled = false;
          reportError('Removing the track', error);
        }
      },
    }, '×');
    return h('li', { class: 'track', 'data-stem-id': stem.id },
      h('span', { class: 'track-no' }, String(index + 1)),
      input,
      h('span', { class: 'track-meta muted' }, describeStem(stem)),
      remove);
  }

  function render(project) {
    const stems = project.stems;
    tracks.replaceChildren(...stems.map(trackItem));
    $('#tracks-empty', root).hidden = stems.length > 0;
    $('#track-count', root).textContent = stems.length ? `(${stems.length})` : '';
    const ref = project.reference;
    $('#reference-info', root).hidden = !ref;
    if (ref) {
      $('#reference-name', root).textContent = ref.filename;
      $('#reference-meta', root).textContent = `${formatClock(ref.duration_s)} · ${ref.loudness_lufs.toFixed(1)} LUFS`;
    }
  }

  return { render };
}
