// Step 4's live preview: while a fader, pan or mute moves, the page plays the open version's per-track audio
// (mixing/preview.py: each track after its strip and before its pan; family groups, already panned, past 16
// tracks) through Web Audio gain and pan nodes, in step with the player's mix, instead of the exact render.
// It is approximate: the master bus is not applied, and a group follows its tracks' faders only as a whole.
// The exact render is heard again once a re-render's version opens.
import * as api from '../api.js';

export const INDICATOR = { preview: 'Preview (approximate, master not applied)', exact: 'Exact render' };
// The preview sources are seeked back to the player's clock when they drift further than this from it.
const MAX_DRIFT_S = 0.05;
// Which mixer controls the preview follows: the faders, the pans and the mute/solo buttons.
const FOLLOWED = '[data-testid$="-gain_db"], [data-testid$="-pan_pct"], .toggle';

/** Linear gain of a track whose fader moved from `renderedDb` (what its source holds) to `gainDb`; 0 when silent. */
export function gainRatio(gainDb, renderedDb, silent) {
  return silent ? 0 : 10 ** ((gainDb - renderedDb) / 20);
}

/** A family group (its tracks summed into one file) follows its tracks' ratios as an RMS, as if they were equally loud. */
export function groupGain(ratios) {
  return Math.sqrt(ratios.reduce((sum, ratio) => sum + ratio * ratio, 0) / ratios.length);
}

/** The console's law for a stereo source (mixing/dsp/pan.py pan_gains): a balance that turns the far side down. */
export function balanceGains(panPct) {
  const pct = Math.min(100, Math.max(-100, panPct));
  return { left: Math.cos(Math.max(pct, 0) * (Math.PI / 200)), right: Math.cos(Math.max(-pct, 0) * (Math.PI / 200)) };
}

// One source: <audio> -> MediaElementAudioSourceNode -> GainNode -> pan -> destination. A mono source pans
// through a StereoPannerNode, whose equal-power law for one channel is the console's: cos/sin of
// (pan + 100) * pi / 400. A stereo source (a StereoPannerNode would fold its sides together) goes through a
// simple balance instead: one gain per side, the console's law for two channels.
function buildSource(context, entry, audio) {
  const node = { entry, audio, input: context.createMediaElementSource(audio), gain: context.createGain() };
  node.input.connect(node.gain);
  if (entry.channels === 1) {
    node.panner = context.createStereoPanner();
    node.gain.connect(node.panner).connect(context.destination);
  } else {
    node.split = context.createChannelSplitter(2);
    node.sides = [context.createGain(), context.createGain()];
    node.merge = context.createChannelMerger(2);
    node.gain.connect(node.split);
    node.sides.forEach((side, channel) => {
      node.split.connect(side, channel);
      side.connect(node.merge, 0, channel);
    });
    node.merge.connect(context.destination);
  }
  return node;
}

function applyPan(node, panPct) {
  if (node.panner) {
    node.panner.pan.value = Math.min(1, Math.max(-1, panPct / 100));
  } else {
    const { left, right } = balanceGains(panPct);
    node.sides[0].gain.value = left;
    node.sides[1].gain.value = right;
  }
}

/**
 * button: "Prepare live preview"; indicator: says which one is heard; clock: the player's mix <audio>, whose
 * position, play and pause the sources follow (muted while the preview is heard); mixer: its root element,
 * whose input and click events move the preview; getTracks(): per track in stem order {gain_db, pan_pct,
 * silent}; onPrepare(): starts the job that makes the files.
 */
export function createPreview({ button, indicator, clock, mixer, getTracks, onPrepare }) {
  let token = 0;
  let manifest = null;
  let files = []; // per source: {entry, audio, url}
  let context = null;
  let nodes = []; // per source, once heard: buildSource's nodes
  let heard = false;
  let updatedAt = null;
  let inputAt = null;

  button.addEventListener('click', () => onPrepare());

  function showState() {
    indicator.textContent = heard ? INDICATOR.preview : INDICATOR.exact;
    indicator.dataset.state = heard ? 'preview' : 'exact';
  }

  function teardown() {
    for (const node of nodes) node.gain.disconnect();
    for (const file of files) {
      file.audio.pause();
      URL.revokeObjectURL(file.url);
    }
    files = [];
    nodes = [];
    manifest = null;
    heard = false;
    clock.muted = false;
    showState();
  }

  /** The version opened: load its preview files if it has them (the exact render is heard until a control moves). */
  async function load(projectId, version) {
    const mine = ++token;
    teardown();
    button.hidden = Boolean(version.preview_url);
    if (!version.preview_url) return;
    let loaded;
    try {
      loaded = await api.getPreview(projectId, version.number);
      const blobs = await Promise.all(loaded.sources.map(async (entry) => {
        const response = await fetch(entry.url, { credentials: 'same-origin' });
        if (!response.ok) throw new Error(`${entry.file}: the server answered ${response.status}`);
        return response.blob();
      }));
      if (mine !== token) return;
      // Blob URLs are always seekable; the files are served whole, without ranges.
      files = loaded.sources.map((entry, index) => {
        const url = URL.createObjectURL(blobs[index]);
        const audio = new Audio(url);
        audio.preload = 'auto';
        return { entry, audio, url };
      });
    } catch (error) {
      if (mine !== token) return;
      button.hidden = false;
      indicator.textContent = `${INDICATOR.exact} (the live preview could not be loaded: ${error.message})`;
      return;
    }
    manifest = loaded;
  }

  function update() {
    const tracks = getTracks();
    if (!nodes.length || tracks.length !== manifest.tracks.length) return;
    for (const node of nodes) {
      const { entry } = node;
      const ratios = entry.tracks.map((track) => {
        const now = tracks[track];
        return gainRatio(now.gain_db, manifest.tracks[track].gain_db, now.silent);
      });
      node.gain.gain.value = ratios.length === 1 ? ratios[0] : groupGain(ratios);
      // A group was panned track by track when it was made: its pan cannot move here.
      if (entry.pan_pct !== null) applyPan(node, tracks[entry.tracks[0]].pan_pct);
    }
    updatedAt = performance.now();
  }

  function follow() {
    for (const { audio } of files) {
      if (Math.abs(audio.currentTime - clock.currentTime) > MAX_DRIFT_S) audio.currentTime = clock.currentTime;
      if (clock.paused) audio.pause();
      else if (audio.paused) audio.play().catch(() => {});
    }
  }

  function hear() {
    if (!manifest || getTracks().length !== manifest.tracks.length) return false;
    if (!context) context = new AudioContext();
    if (context.state === 'suspended') context.resume().catch(() => {});
    if (!nodes.length) nodes = files.map((file) => buildSource(context, file.entry, file.audio));
    if (!heard) {
      heard = true;
      clock.muted = true;
      follow();
      showState();
    }
    return true;
  }

  mixer.addEventListener('input', moved);
  mixer.addEventListener('click', moved);
  function moved(event) {
    if (!(event.target instanceof Element) || !event.target.closest(FOLLOWED)) return;
    if (!hear()) return;
    inputAt = event.timeStamp;
    update();
  }

  for (const type of ['play', 'pause', 'seeked', 'timeupdate']) {
    clock.addEventListener(type, () => {
      if (heard) follow();
    });
  }

  /** The mixer changed another way (undo, advice): keep the heard preview on its values. */
  function refresh() {
    if (heard) update();
  }

  window.__mixrefPreview = {
    get state() {
      return heard ? 'preview' : 'exact';
    },
    get indicator() {
      return indicator.textContent;
    },
    get ready() {
      return manifest !== null;
    },
    /**
     * Per source: its name, tracks, and what its nodes hold now (null until the preview is first heard): the
     * GainNode's gain and the pan, a StereoPannerNode's value for one channel, [left, right] gains for two.
     */
    get sources() {
      return files.map((file, index) => {
        const node = nodes[index];
        const pan = node && (node.panner ? node.panner.pan.value : node.sides.map((side) => side.gain.value));
        return { name: file.entry.name, tracks: file.entry.tracks, gain: node ? node.gain.gain.value : null, pan: node ? pan : null };
      });
    },
    gainOf(track) {
      const index = files.findIndex((file) => file.entry.tracks.includes(track));
      return nodes[index] ? nodes[index].gain.gain.value : null;
    },
    // performance.now() of the last gain update, and the timeStamp (same clock) of the input event that caused it.
    get updatedAt() {
      return updatedAt;
    },
    get inputAt() {
      return inputAt;
    },
  };

  showState();
  return { load, refresh };
}
