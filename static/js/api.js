// Fetch wrappers for the Mixref JSON API (docs/API.md). Every failure becomes an ApiError
// carrying the server's error envelope, so the page can show the server's own words.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const STATUS_MESSAGES = {
  0: 'The server could not be reached. Check your connection and try again.',
  400: 'The server could not use that request.',
  403: 'Your session has expired or the request was refused. Reload the page and try again.',
  404: 'Not found — it may have been deleted.',
  409: 'Something else is still running for this project. Wait for it to finish.',
  413: 'That file is too large.',
};

// Kept from GET /api/session/ because a CSRF cookie marked HttpOnly cannot be read by scripts.
let sessionToken = null;

function cookie(name) {
  const prefix = `${name}=`;
  for (const part of document.cookie.split(';')) {
    const item = part.trim();
    if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
  }
  return null;
}

export async function session() {
  const response = await fetch('/api/session/', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  const body = await readBody(response);
  if (!response.ok) throw toError(response.status, body);
  sessionToken = body.csrf_token || null;
  return body;
}

async function csrfToken() {
  const fromCookie = cookie('csrftoken');
  if (fromCookie) return fromCookie;
  if (!sessionToken) await session();
  return cookie('csrftoken') || sessionToken;
}

async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { raw: text };
  }
}

function toError(status, body) {
  const envelope = body && body.error;
  if (envelope && typeof envelope === 'object') {
    return new ApiError(status, envelope.code || 'error', envelope.message || STATUS_MESSAGES[status] || `Error ${status}`, envelope.details || {});
  }
  return new ApiError(status, 'http_error', STATUS_MESSAGES[status] || `The server answered with error ${status}.`);
}

async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (UNSAFE_METHODS.has(method)) headers['X-CSRFToken'] = await csrfToken();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', STATUS_MESSAGES[0]);
  }
  const data = await readBody(response);
  if (!response.ok) throw toError(response.status, data);
  return data;
}

/**
 * Send multipart form data with XMLHttpRequest, the only browser API that reports upload progress.
 * onProgress receives a fraction in [0, 1]. Resolves to the parsed JSON answer.
 */
export async function upload(method, path, formData, onProgress = () => {}) {
  const token = await csrfToken();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader('X-CSRFToken', token);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.withCredentials = true;
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(toError(xhr.status, data));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', STATUS_MESSAGES[0]));
    xhr.send(formData);
  });
}

function formWith(field, file) {
  const form = new FormData();
  form.append(field, file, file.name);
  return form;
}

const project = (id) => `/api/projects/${encodeURIComponent(id)}/`;
const version = (id, number) => `${project(id)}versions/${number}/`;

export const getSchema = () => request('GET', '/api/schema/');

export const listProjects = () => request('GET', '/api/projects/');
export const createProject = (name) => request('POST', '/api/projects/', { name });
export const getProject = (id) => request('GET', project(id));
export const renameProject = (id, name) => request('PATCH', project(id), { name });
export const setReferencePrivacy = (id, deleteAudio) => request('PATCH', project(id), { delete_reference_audio: deleteAudio });
export const deleteProject = (id) => request('DELETE', project(id));

export const uploadStem = (id, file, onProgress) => upload('POST', `${project(id)}stems/`, formWith('files', file), onProgress);
export const renameStem = (id, stemId, name) => request('PATCH', `${project(id)}stems/${encodeURIComponent(stemId)}/`, { name });
export const setStemFamily = (id, stemId, family) => request('PATCH', `${project(id)}stems/${encodeURIComponent(stemId)}/`, { family });
export const deleteStem = (id, stemId) => request('DELETE', `${project(id)}stems/${encodeURIComponent(stemId)}/`);
export const getPreflight = (id) => request('GET', `${project(id)}preflight/`);
export const fixStem = (id, stemId, fix) => request('POST', `${project(id)}stems/${encodeURIComponent(stemId)}/fix/`, { fix });
export const uploadReference = (id, file, onProgress) => upload('PUT', `${project(id)}reference/`, formWith('file', file), onProgress);

export const startMix = (id) => request('POST', `${project(id)}mix/`, { method: 'auto' });
export const startRender = (id, body) => request('POST', `${project(id)}render/`, body);
export const startStems = (id, number) => request('POST', `${version(id, number)}stems/`);
export const startPreview = (id, number) => request('POST', `${version(id, number)}preview/`);
export const startStrength = (id, body) => request('POST', `${project(id)}strength/`, body);
export const uploadPreset = (id, file) => upload('POST', `${project(id)}preset/`, formWith('file', file));
export const getJob = (jobId) => request('GET', `/api/jobs/${encodeURIComponent(jobId)}/`);
export const cancelJob = (jobId) => request('POST', `/api/jobs/${encodeURIComponent(jobId)}/cancel/`);

export const getVersion = (id, number) => request('GET', version(id, number));
export const getPreview = (id, number) => request('GET', `${version(id, number)}preview/`);
export const getCharts = (id, number) => request('GET', `${version(id, number)}charts/`);
export const getExplanation = (id, number) => request('GET', `${version(id, number)}explain/`);
export const referenceAudioUrl = (id) => `${project(id)}reference/audio/`;
export const baselineAudioUrl = (id) => `${project(id)}baseline/audio/`;
export const versionAudioUrl = (id, number) => `${version(id, number)}audio/`;
