// Step 5: one transport driving several <audio> elements. Switching source keeps the position,
// and every source is turned down to the quietest one so that A/B compares sound, not volume.
import { formatClock } from '../dom.js';

export const SOURCES = ['mix', 'reference', 'baseline', 'compare'];
const KEYS = { 1: 'mix', 2: 'reference', 3: 'baseline', 4: 'compare' };
const CHECK_KEYS = { m: 'mono', s: 'speaker', l: 'streaming' };

// Translation checks, applied to every source alike by a Web Audio chain on each <audio> element, built on
// the first check turned on (an AudioContext may only start from a click): source -> mono -> [small
// speaker] -> level -> speakers. Mono: a one-channel node, so the browser plays (L + R) / 2 on both sides.
// Small speaker: a phone or laptop speaker, roughly: nothing below 200 Hz or above 8 kHz (12 dB/octave
// each) and a gentle +4 dB resonance around 1.2 kHz. Streaming: each file at -14 LUFS, the level most
// streaming services play at, from its integrated loudness as measured on the server (in place of matching).
export const STREAMING_LUFS = -14;
export const SMALL_SPEAKER = { highpassHz: 200, lowpassHz: 8000, resonanceHz: 1200, resonanceGainDb: 4, resonanceQ: 1.4 };

/** Gain that brings a file of `lufs` to STREAMING_LUFS: 10^((-14 - lufs) / 20); it may exceed 1. */
export function streamingGain(lufs) {
  return 10 ** ((STREAMING_LUFS - lufs) / 20);
}

function buildChain(context, audio) {
  const chain = {
    source: context.createMediaElementSource(audio),
    mono: context.createGain(),
    highpass: new BiquadFilterNode(context, { type: 'highpass', frequency: SMALL_SPEAKER.highpassHz, Q: Math.SQRT1_2 }),
    resonance: new BiquadFilterNode(context, { type: 'peaking', frequency: SMALL_SPEAKER.resonanceHz, Q: SMALL_SPEAKER.resonanceQ, gain: SMALL_SPEAKER.resonanceGainDb }),
    lowpass: new BiquadFilterNode(context, { type: 'lowpass', frequency: SMALL_SPEAKER.lowpassHz, Q: Math.SQRT1_2 }),
    level: context.createGain(),
  };
  chain.mono.channelInterpretation = 'speakers';
  chain.source.connect(chain.mono);
  chain.highpass.connect(chain.resonance).connect(chain.lowpass).connect(chain.level);
  chain.level.connect(context.destination);
  return chain;
}

function routeChain(chain, checks) {
  chain.mono.channelCount = checks.mono ? 1 : 2;
  chain.mono.channelCountMode = checks.mono ? 'explicit' : 'max';
  chain.mono.disconnect();
  chain.mono.connect(checks.speaker ? chain.highpass : chain.level);
}

/** Gain that brings a source of `lufs` down to `minLufs`: 10^((min - lufs) / 20), never above 1. */
export function matchedVolume(lufs, minLufs) {
  return Math.min(1, 10 ** ((minLufs - lufs) / 20));
}

function seekWhenReady(audio, seconds) {
  const apply = () => {
    audio.currentTime = Math.min(seconds, Number.isFinite(audio.duration) ? audio.duration : seconds);
  };
  if (audio.readyState >= 1) apply();
  else audio.addEventListener('loadedmetadata', apply, { once: true });
}

// Chromium can only seek media served with HTTP range support. When the server sends a whole file
// without it (its seekable range is then empty or [0, 0]), the file is fetched once into a blob:
// URL, which is always seekable.
async function makeSeekable(audio) {
  const url = audio.dataset.url;
  const ranges = audio.seekable;
  const seekableEnd = ranges.length ? ranges.end(ranges.length - 1) : 0;
  if (!url || audio.src.startsWith('blob:') || seekableEnd > 0) return;
  let blob;
  try {
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) return;
    blob = await response.blob();
  } catch {
    return;
  }
  if (audio.dataset.url !== url) return;
  const position = audio.currentTime;
  const wasPlaying = !audio.paused;
  audio.src = URL.createObjectURL(blob);
  seekWhenReady(audio, position);
  if (wasPlaying) audio.play().catch(() => {});
}

function setUrl(audio, url) {
  if (audio.src.startsWith('blob:')) URL.revokeObjectURL(audio.src);
  audio.pause();
  audio.dataset.url = url;
  if (url) {
    audio.src = url;
  } else {
    audio.removeAttribute('src');
    audio.load();
  }
}

function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || target.matches('textarea, select, input:not([type=range]):not([type=button]):not([type=checkbox])'));
}

export function createPlayer(root) {
  const audios = Object.fromEntries(SOURCES.map((key) => [key, root.querySelector(`audio[data-source="${key}"]`)]));
  const buttons = Object.fromEntries(SOURCES.map((key) => [key, root.querySelector(`.ab-btn[data-source="${key}"]`)]));
  const playButton = root.querySelector('#play-button');
  const seek = root.querySelector('#seek');
  const clockNow = root.querySelector('#clock-now');
  const clockTotal = root.querySelector('#clock-total');
  const levelsText = root.querySelector('#levels-text');
  const checkButtons = Object.fromEntries([...root.querySelectorAll('.check-btn')].map((button) => [button.dataset.check, button]));
  const checks = { mono: false, speaker: false, streaming: false };
  let context = null;
  let sources = {};
  let active = 'mix';
  let previous = 'reference';
  let seeking = false;

  const current = () => audios[active];
  const available = (key) => !!(sources[key] && sources[key].url);

  function refreshTransport() {
    const audio = current();
    const duration = Number.isFinite(audio.duration) ? audio.duration : 0;
    seek.max = String(duration);
    if (!seeking) seek.value = String(audio.currentTime);
    const text = `${formatClock(audio.currentTime)} of ${formatClock(duration)}`;
    seek.setAttribute('aria-valuetext', text);
    clockNow.textContent = formatClock(audio.currentTime);
    clockTotal.textContent = formatClock(duration);
    const playing = !audio.paused;
    playButton.textContent = playing ? '❚❚' : '▶';
    playButton.setAttribute('aria-label', playing ? 'Pause' : 'Play');
  }

  for (const audio of Object.values(audios)) {
    audio.addEventListener('loadedmetadata', () => makeSeekable(audio));
    for (const type of ['timeupdate', 'loadedmetadata', 'play', 'pause', 'ended', 'durationchange']) {
      audio.addEventListener(type, () => {
        if (audio === current()) refreshTransport();
      });
    }
  }

  function play(audio) {
    audio.play().catch(() => refreshTransport());
  }

  function switchTo(key) {
    if (!available(key) || key === active) return;
    const from = current();
    const to = audios[key];
    const wasPlaying = !from.paused;
    from.pause();
    seekWhenReady(to, from.currentTime);
    previous = active;
    active = key;
    for (const [name, button] of Object.entries(buttons)) button.setAttribute('aria-pressed', String(name === key));
    if (wasPlaying) play(to);
    refreshTransport();
  }

  function togglePlay() {
    const audio = current();
    if (audio.paused) play(audio);
    else audio.pause();
  }

  for (const [key, button] of Object.entries(buttons)) button.addEventListener('click', () => switchTo(key));
  playButton.addEventListener('click', togglePlay);
  seek.addEventListener('input', () => {
    seeking = true;
    current().currentTime = Number(seek.value);
    refreshTransport();
  });
  seek.addEventListener('change', () => {
    seeking = false;
  });

  /** Turn a translation check on or off; the chains are made on first use (from a click or a key). */
  function toggleCheck(name) {
    checks[name] = !checks[name];
    if (!context) {
      context = new AudioContext();
      // A property of the element, so that the browser test (and a curious developer) can inspect it.
      for (const audio of Object.values(audios)) audio.mixrefChain = buildChain(context, audio);
    }
    if (context.state === 'suspended') context.resume().catch(() => {});
    for (const audio of Object.values(audios)) routeChain(audio.mixrefChain, checks);
    checkButtons[name].setAttribute('aria-pressed', String(checks[name]));
    matchLevels();
  }

  for (const [name, button] of Object.entries(checkButtons)) button.addEventListener('click', () => toggleCheck(name));

  document.addEventListener('keydown', (event) => {
    if (root.hidden || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    const key = event.key.toLowerCase();
    if (KEYS[key]) switchTo(KEYS[key]);
    else if (CHECK_KEYS[key]) toggleCheck(CHECK_KEYS[key]);
    else if (key === 'b') switchTo(active === 'mix' ? previous : 'mix');
    else if (key === 'p') togglePlay();
    else return;
    event.preventDefault();
  });

  /** Gain 1 or below through the element's volume, until the chain exists; then all of it in the chain. */
  function setLevel(audio, gain) {
    if (audio.mixrefChain) {
      audio.volume = 1;
      audio.mixrefChain.level.gain.value = gain;
    } else {
      audio.volume = Math.min(1, gain);
    }
  }

  function matchLevels() {
    const known = SOURCES.filter((key) => available(key) && Number.isFinite(sources[key].lufs));
    const minLufs = Math.min(...known.map((key) => sources[key].lufs));
    const parts = [];
    for (const key of SOURCES) {
      if (!available(key)) continue;
      const lufs = sources[key].lufs;
      const isKnown = known.includes(key);
      let gain = 1;
      if (isKnown) gain = checks.streaming ? streamingGain(lufs) : matchedVolume(lufs, minLufs);
      setLevel(audios[key], gain);
      const gainDb = 20 * Math.log10(gain);
      parts.push(`${sources[key].label} ${isKnown ? `${gainDb > 0 ? '+' : ''}${gainDb.toFixed(1)} dB` : 'unknown loudness'}`);
    }
    const allKnown = known.length === SOURCES.filter(available).length;
    let heading = allKnown ? 'Levels matched' : 'Levels partly matched';
    if (checks.streaming) heading = `At streaming loudness (${STREAMING_LUFS} LUFS)${allKnown ? '' : ', partly'}`;
    levelsText.textContent = `${heading}: ${parts.join(' · ')}`;
    levelsText.classList.toggle('is-warning', !allKnown);
  }

  /** sources: {mix, reference, baseline, compare}: each {url, lufs, label} or null. */
  function setSources(next) {
    const position = current().currentTime;
    const wasPlaying = !current().paused;
    sources = next;
    for (const key of SOURCES) {
      const audio = audios[key];
      const url = available(key) ? sources[key].url : '';
      buttons[key].hidden = !url;
      if (url) buttons[key].firstChild.textContent = `${sources[key].label} `;
      if ((audio.dataset.url || '') === url) continue;
      setUrl(audio, url);
      if (url && key === active) seekWhenReady(audio, position);
    }
    if (!available(active)) switchTo('mix');
    else if (wasPlaying && current().paused) play(current());
    matchLevels();
    refreshTransport();
  }

  return { setSources };
}
