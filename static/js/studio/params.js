// Slider positions and value labels for the parameter schema (mixing/params.py via GET /api/schema/).
// Log-scale parameters move on a 0..LOG_STEPS slider mapped geometrically, so every octave of
// frequency or decade of time gets the same travel.

export const LOG_STEPS = 1000;

export function sliderRange(spec) {
  if (spec.scale === 'log') return { min: 0, max: LOG_STEPS, step: 1 };
  return { min: spec.min, max: spec.max, step: linearStep(spec.max - spec.min) };
}

// About 200-2000 positions over the range, on a power of ten (0.01 dB, 0.1 dB, 1 %).
function linearStep(range) {
  return 10 ** Math.floor(Math.log10(range / 200));
}

export function toSlider(spec, value) {
  const clamped = Math.min(spec.max, Math.max(spec.min, value));
  if (spec.scale !== 'log') return clamped;
  return Math.round((LOG_STEPS * Math.log(clamped / spec.min)) / Math.log(spec.max / spec.min));
}

export function fromSlider(spec, position) {
  const x = Number(position);
  const value = spec.scale === 'log' ? spec.min * (spec.max / spec.min) ** (x / LOG_STEPS) : x;
  // Rounding in the power can land a hair outside the range, which the server's preset check refuses.
  return Math.min(spec.max, Math.max(spec.min, value));
}

function fixed(value, digits) {
  // Avoids "-0.0" for values that round to zero.
  const text = value.toFixed(digits);
  return Number(text) === 0 ? (0).toFixed(digits) : text;
}

function signed(value, digits) {
  const text = fixed(value, digits);
  return Number(text) > 0 ? `+${text}` : text;
}

/** The value as people read it on a console: "-3.5 dB", "2.4 kHz", "120 ms", "4.0:1", "L 40%". */
export function formatValue(spec, value) {
  if (!Number.isFinite(value)) return '—';
  // Pan and the master balance both read as a side and a distance from the centre.
  if (spec.name.endsWith('pan_pct') || spec.name === 'master_balance_pct') {
    const pct = Math.round(value);
    if (pct === 0) return 'C';
    return `${pct < 0 ? 'L' : 'R'} ${Math.abs(pct)}%`;
  }
  switch (spec.unit) {
    case 'Hz':
      // Number() drops trailing zeros: "2.4 kHz", "1.25 kHz".
      return value >= 1000 ? `${Number((value / 1000).toFixed(value >= 10000 ? 1 : 2))} kHz` : `${Math.round(value)} Hz`;
    case 'dB':
      return `${signed(value, 1)} dB`;
    case 'ms':
      return `${fixed(value, value < 10 ? 1 : 0)} ms`;
    case ':1':
      return `${fixed(value, 1)}:1`;
    case '%':
      return `${Math.round(value)}%`;
    case '':
      return fixed(value, 2);
    default:
      return `${fixed(value, 1)} ${spec.unit}`;
  }
}

/** Two values count as equal when they sit on the same slider position. */
export function sameValue(spec, a, b) {
  if (spec.scale === 'log') return toSlider(spec, a) === toSlider(spec, b);
  return Math.abs(a - b) < linearStep(spec.max - spec.min) / 2;
}
