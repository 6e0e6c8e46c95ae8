// Before mixing: what the preflight (mixing/preflight.py) found in the stems, in plain words, most serious
// first, with a button for each fix that cannot make anything worse. Run when stems or the reference change.
import * as api from '../api.js';
import { h } from '../dom.js';

const SEVERITY_LABELS = { problem: 'Problem', warning: 'Check', info: 'Note' };

function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

function summary(report) {
  const counts = { problem: 0, warning: 0, info: 0 };
  for (const finding of report.findings) counts[finding.severity] += 1;
  const checked = `${plural(report.stems, 'stem')} checked in ${report.elapsed_s.toFixed(1)} s`;
  if (!report.findings.length) return `${checked}: nothing to fix.`;
  const parts = [];
  if (counts.problem) parts.push(plural(counts.problem, 'problem'));
  if (counts.warning) parts.push(`${counts.warning} to check`);
  if (counts.info) parts.push(plural(counts.info, 'note'));
  return `${checked}: ${parts.join(', ')}.`;
}

/** ctx: {projectId, onFixed(result, finding)}: result {stem (null once deleted), message}. */
export function createPreflight(root, ctx) {
  const list = root.querySelector('#preflight-findings');
  const status = root.querySelector('#preflight-status');
  const done = root.querySelector('#preflight-done');
  const again = root.querySelector('#preflight-run');
  let token = 0;

  function showError(text) {
    status.textContent = text;
    status.classList.add('error-text');
  }

  function item(finding) {
    const button = finding.fix && h('button', {
      type: 'button', class: 'btn btn-small', 'data-testid': `preflight-fix-${finding.check}`,
      onclick: () => applyFix(finding, button),
    }, finding.fix_label);
    return h('li', { class: `finding is-${finding.severity}`, 'data-testid': 'preflight-finding', 'data-check': finding.check },
      h('span', { class: 'finding-severity' }, SEVERITY_LABELS[finding.severity] || finding.severity),
      h('span', { class: 'finding-text' }, finding.message),
      button);
  }

  async function run() {
    const mine = ++token;
    root.hidden = false;
    root.setAttribute('aria-busy', 'true');
    status.classList.remove('error-text');
    status.textContent = 'Checking every stem in full…';
    again.disabled = true;
    let report;
    try {
      report = await api.getPreflight(ctx.projectId);
    } catch (error) {
      if (mine === token) showError(`The stems could not be checked: ${error.message}`);
      return;
    } finally {
      if (mine === token) {
        again.disabled = false;
        root.setAttribute('aria-busy', 'false');
      }
    }
    if (mine !== token) return;
    status.textContent = summary(report);
    list.replaceChildren(...report.findings.map(item));
  }

  async function applyFix(finding, button) {
    for (const other of list.querySelectorAll('button')) other.disabled = true;
    button.textContent = 'Fixing…';
    let result;
    try {
      result = await api.fixStem(ctx.projectId, finding.track, finding.fix);
    } catch (error) {
      showError(`Not fixed: ${error.message}`);
      for (const other of list.querySelectorAll('button')) other.disabled = false;
      button.textContent = finding.fix_label;
      return;
    }
    done.textContent = result.message;
    done.hidden = false;
    ctx.onFixed(result, finding);
    run();
  }

  /** No stems: nothing to check, and no report of stems that are gone. */
  function clear() {
    token += 1;
    root.hidden = true;
    list.replaceChildren();
    done.hidden = true;
  }

  again.addEventListener('click', run);
  return { run, clear };
}
