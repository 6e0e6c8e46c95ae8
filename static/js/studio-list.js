// The project list at "/": create, open and delete projects.
import * as api from './api.js';
import { $, formatDateTime, h } from './dom.js';

const STATUS_LABELS = {
  empty: 'Empty', needs_stems: 'Needs stems', needs_reference: 'Needs a reference', ready: 'Ready to mix',
  mixing: 'Working…', mixed: 'Mixed', changed: 'New inputs since the mix', failed: 'Failed',
};

const list = $('#project-list');
const studioUrl = (id) => `/projects/${encodeURIComponent(id)}/`;

function summary(project) {
  const stems = (project.stems || []).length;
  const parts = [`${stems} ${stems === 1 ? 'stem' : 'stems'}`];
  if (project.reference) parts.push(`reference: ${project.reference.filename}`);
  const versions = (project.versions || []).length;
  if (versions) parts.push(`${versions} ${versions === 1 ? 'version' : 'versions'}`);
  return parts.join(' · ');
}

function projectItem(project) {
  const actions = h('div', { class: 'project-actions' });
  const item = h('li', { class: 'project', 'data-testid': 'project-item', 'data-project-id': project.id },
    h('div', { class: 'project-main' },
      h('a', { class: 'project-name', href: studioUrl(project.id) }, project.name || 'Untitled'),
      h('span', { class: 'badge', 'data-status': project.status }, STATUS_LABELS[project.status] || project.status),
      h('p', { class: 'muted small' },
        h('time', { datetime: project.created_at }, formatDateTime(project.created_at)), ` · ${summary(project)}`)),
    actions);

  const idle = () => actions.replaceChildren(
    h('a', { class: 'btn btn-small', href: studioUrl(project.id) }, 'Open'),
    h('button', { type: 'button', class: 'btn btn-small btn-ghost btn-danger', 'data-testid': 'delete-project', 'aria-label': `Delete ${project.name}`, onclick: confirm }, 'Delete'));

  // An inline question rather than window.confirm: it can be styled, read by screen readers and tested.
  function confirm() {
    const yes = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'data-testid': 'confirm-delete', onclick: remove }, 'Delete for good');
    actions.replaceChildren(
      h('span', { class: 'confirm-text', role: 'alert' }, `Delete “${project.name}” and its files?`),
      yes,
      h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: idle }, 'Cancel'));
    yes.focus();
  }

  async function remove() {
    actions.replaceChildren(h('span', { class: 'muted small' }, 'Deleting…'));
    try {
      await api.deleteProject(project.id);
      item.remove();
      $('#projects-empty').hidden = list.children.length > 0;
    } catch (error) {
      idle();
      actions.prepend(h('span', { class: 'error-text small' }, `Not deleted: ${error.message}`));
    }
  }

  idle();
  return item;
}

async function load() {
  try {
    const { projects } = await api.listProjects();
    const newestFirst = [...projects].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    list.replaceChildren(...newestFirst.map(projectItem));
    $('#projects-empty').hidden = projects.length > 0;
  } catch (error) {
    list.replaceChildren(h('li', { class: 'error-text' }, `Your projects could not be loaded: ${error.message}`));
  } finally {
    $('#projects-loading').hidden = true;
  }
}

$('#new-project').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $('#new-project-error');
  const button = form.querySelector('button[type=submit]');
  const name = form.elements.name.value.trim();
  if (!name) return;
  error.hidden = true;
  button.disabled = true;
  try {
    const project = await api.createProject(name);
    window.location.assign(studioUrl(project.id));
  } catch (failure) {
    error.textContent = `The project could not be created: ${failure.message}`;
    error.hidden = false;
    button.disabled = false;
  }
});

load();
