"""The one parameter schema of the mixing console.

Every console parameter is described once here: its name (with its unit as a
suffix), unit, range, default and the scale on which the controller and the
UI sliders move it. The console, the controller, the fitting code, presets and
the web sliders all read this module; nothing else defines a range.

Normalized values (suffix ``_norm``) live in [0, 1]; ``scale="log"`` maps them
geometrically, so a slider or an optimizer step covers octaves of frequency or
decades of time evenly.

Track strip: neural tone (experimental, off by default) -> gain -> 6-band
parametric EQ (low shelf, 4 peaks, high shelf) -> compressor -> pan. Master bus: 6-band EQ -> compressor -> expander ->
match EQ and multiband width -> stereo width -> balance -> loudness target ->
true-peak ceiling.

Schema versions: 2 added the master balance and the match EQ (a graphic EQ
on the bark bands of the AF loss, set by ``mixing.master_match``); 3 added
the master expander (off at its default ratio of 1); 4 added the match EQ's
left/right gains (one per band, 0 dB: both channels alike); 5 added the master
multiband width (one side-signal width per match EQ band, 100 %: unchanged); 6 added the reverb bus
(``mixing.dsp.reverb``: each track's send, off at its minimum, and the bus's decay, pre-delay, damping and
return) and the limiter drive (0 dB: the ceiling as before); 7 added each track's neural tone amount
(``mixing.tone.stage``: 0 %, off, by default). Presets of earlier
versions still load: the parameters they lack take their defaults, which
leave the sound as those versions made it. The learnable parameters (what the
controller predicts) are the same in all versions.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from mixing.errors import PresetError
from mixing.features import BARK_F_MAX_HZ, N_BARK_BANDS, bark_band_centres_hz

SCHEMA_VERSION = 7
READABLE_SCHEMA_VERSIONS = (1, 2, 3, 4, 5, 6, 7)


@dataclass(frozen=True)
class ParamSpec:
    """One console parameter.

    ``learnable`` parameters are predicted by the controller and moved by
    fitting; the others are set from measurements (output loudness), by
    master matching on the whole song (match EQ, balance) or by the user.
    """

    name: str
    label: str
    unit: str
    min: float
    max: float
    default: float
    scale: Literal["linear", "log"] = "linear"
    group: str = ""
    learnable: bool = True

    def __post_init__(self):
        if not self.min < self.max:
            raise ValueError(f"{self.name}: min {self.min} must be below max {self.max}")
        if not self.min <= self.default <= self.max:
            raise ValueError(f"{self.name}: default {self.default} outside [{self.min}, {self.max}]")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"{self.name}: a log scale needs a positive minimum")

    def clamp(self, value: float) -> float:
        """``value`` limited to [min, max]."""
        return min(max(value, self.min), self.max)

    def normalize(self, value):
        """Map a value in units to [0, 1]. Works on floats and tensors."""
        if self.scale == "log":
            log = torch.log if isinstance(value, torch.Tensor) else math.log
            return (log(value) - math.log(self.min)) / (math.log(self.max) - math.log(self.min))
        return (value - self.min) / (self.max - self.min)

    def denormalize(self, norm):
        """Map [0, 1] to a value in units. Works on floats and tensors."""
        if self.scale == "log":
            exp = torch.exp if isinstance(norm, torch.Tensor) else math.exp
            return exp(math.log(self.min) + norm * (math.log(self.max) - math.log(self.min)))
        return self.min + norm * (self.max - self.min)

    @property
    def default_norm(self) -> float:
        return float(self.normalize(self.default))

    def to_dict(self) -> dict:
        return asdict(self)


# Bands of the 6-band parametric EQ: (key, label, kind, freq range and default in Hz).
# Peaking bands overlap on purpose so that fitting can move any of them where it is needed.
EQ_BANDS = (
    ("low_shelf", "Low shelf", "low_shelf", 30.0, 1000.0, 100.0),
    ("band1", "Band 1", "peaking", 40.0, 1000.0, 200.0),
    ("band2", "Band 2", "peaking", 100.0, 4000.0, 600.0),
    ("band3", "Band 3", "peaking", 300.0, 10000.0, 2000.0),
    ("band4", "Band 4", "peaking", 1000.0, 16000.0, 6000.0),
    ("high_shelf", "High shelf", "high_shelf", 1000.0, 16000.0, 8000.0),
)
EQ_GAIN_RANGE_DB = 18.0
# Q below 0.05 gives NaN responses in RBJ biquads; shelves use Q as their slope.
PEAK_Q_RANGE = (0.1, 8.0, 0.707)
SHELF_Q_RANGE = (0.1, 1.5, 0.707)


def _eq_specs(prefix: str, group: str) -> list[ParamSpec]:
    specs = []
    for key, label, kind, fmin, fmax, fdefault in EQ_BANDS:
        qmin, qmax, qdefault = SHELF_Q_RANGE if kind != "peaking" else PEAK_Q_RANGE
        specs += [
            ParamSpec(f"{prefix}eq_{key}_freq_hz", f"{label} frequency", "Hz", fmin, fmax, fdefault, "log", group),
            ParamSpec(f"{prefix}eq_{key}_gain_db", f"{label} gain", "dB", -EQ_GAIN_RANGE_DB, EQ_GAIN_RANGE_DB, 0.0,
                      "linear", group),
            ParamSpec(f"{prefix}eq_{key}_q", f"{label} Q", "", qmin, qmax, qdefault, "log", group),
        ]
    return specs


def _compressor_specs(prefix: str, group: str, threshold_default_db: float, ratio_default: float) -> list[ParamSpec]:
    # knee >= 0.1 dB and attack >= 0.1 ms keep gradients finite (see shared/DSP.md).
    return [
        ParamSpec(f"{prefix}comp_threshold_db", "Threshold (RMS)", "dB", -60.0, 0.0, threshold_default_db,
                  "linear", group),
        ParamSpec(f"{prefix}comp_ratio", "Ratio", ":1", 1.0, 20.0, ratio_default, "log", group),
        ParamSpec(f"{prefix}comp_attack_ms", "Attack", "ms", 0.1, 100.0, 10.0, "log", group),
        ParamSpec(f"{prefix}comp_release_ms", "Release", "ms", 10.0, 1000.0, 100.0, "log", group),
        ParamSpec(f"{prefix}comp_knee_db", "Knee", "dB", 0.1, 12.0, 6.0, "linear", group),
    ]


# Each stem is first normalized to this loudness, so that gain_db = 0 on every
# track is the equal-loudness mix and presets carry over between projects.
TRACK_INPUT_LUFS = -30.0

REVERB_SEND_OFF_DB = -60.0

TRACK_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("gain_db", "Gain", "dB", -36.0, 24.0, 0.0, "linear", "gain"),
    *_eq_specs("", "eq"),
    *_compressor_specs("", "compressor", threshold_default_db=0.0, ratio_default=1.0),
    ParamSpec("pan_pct", "Pan", "%", -100.0, 100.0, 0.0, "linear", "pan"),
    # At its minimum the send is off (no signal at all, not -60 dB), so a mix without reverb stays bit-identical.
    ParamSpec("reverb_send_db", "Reverb send (min: off)", "dB", REVERB_SEND_OFF_DB, 0.0, REVERB_SEND_OFF_DB,
              "linear", "reverb", learnable=False),
    # Experimental: the track's family model (mixing.tone) before the strip, as a dry/wet mix; listed last so that
    # the studio's details strip still opens on the EQ. At 0 % the track is not touched at all, and nothing
    # automatic ever sets it: only a user does.
    ParamSpec("tone_amount_pct", "Neural tone (experimental)", "%", 0.0, 100.0, 0.0, "linear", "neural tone",
              learnable=False),
)

# The match EQ's bands are the AF loss's bark bands (at any sample rate whose
# Nyquist frequency reaches BARK_F_MAX_HZ), so its gains act on the bark spectrum directly.
MATCH_EQ_CENTRES_HZ: tuple[float, ...] = tuple(float(f) for f in bark_band_centres_hz(int(2 * BARK_F_MAX_HZ)))
MATCH_EQ_GAIN_RANGE_DB = EQ_GAIN_RANGE_DB


def _match_eq_label(freq_hz: float) -> str:
    return f"{freq_hz / 1000:.1f} kHz" if freq_hz >= 1000 else f"{freq_hz:.0f} Hz"


MATCH_EQ_GAIN_NAMES: tuple[str, ...] = tuple(f"master_match_eq_{i + 1:02d}_gain_db" for i in range(N_BARK_BANDS))
# A band's left channel gets its gain plus half its left/right gain, the right channel its gain minus half:
# where the reference's two channels differ in tone, one curve for both cannot follow.
MATCH_EQ_LR_NAMES: tuple[str, ...] = tuple(f"master_match_eq_{i + 1:02d}_lr_db" for i in range(N_BARK_BANDS))
MATCH_EQ_LR_RANGE_DB = 6.0
# The multiband width scales the side signal (L - R) / 2 band by band at the match EQ's centres, the mid left
# alone: a reference can be wide in the highs and narrow in the lows, which one width for all cannot follow.
BAND_WIDTH_NAMES: tuple[str, ...] = tuple(f"master_band_width_{i + 1:02d}_pct" for i in range(N_BARK_BANDS))
BAND_WIDTH_MAX_PCT = 200.0

MASTER_PARAMS: tuple[ParamSpec, ...] = tuple(
    _eq_specs("master_", "master eq")
    + _compressor_specs("master_", "master compressor", threshold_default_db=0.0, ratio_default=1.0)
    + [
        # Set by master matching when the reference is the more dynamic song (mixing.dsp.expander).
        ParamSpec("master_expander_threshold_db", "Threshold (RMS)", "dB", -60.0, 0.0, -30.0, "linear",
                  "master expander", learnable=False),
        ParamSpec("master_expander_ratio", "Ratio", ":1", 1.0, 4.0, 1.0, "log", "master expander",
                  learnable=False),
    ]
    + [
        ParamSpec(name, _match_eq_label(freq_hz), "dB", -MATCH_EQ_GAIN_RANGE_DB, MATCH_EQ_GAIN_RANGE_DB, 0.0,
                  "linear", "master match eq", learnable=False)
        for name, freq_hz in zip(MATCH_EQ_GAIN_NAMES, MATCH_EQ_CENTRES_HZ, strict=True)
    ]
    + [
        ParamSpec(name, f"{_match_eq_label(freq_hz)} left - right", "dB", -MATCH_EQ_LR_RANGE_DB,
                  MATCH_EQ_LR_RANGE_DB, 0.0, "linear", "master match eq lr", learnable=False)
        for name, freq_hz in zip(MATCH_EQ_LR_NAMES, MATCH_EQ_CENTRES_HZ, strict=True)
    ]
    + [
        ParamSpec(name, f"{_match_eq_label(freq_hz)} width", "%", 0.0, BAND_WIDTH_MAX_PCT, 100.0, "linear",
                  "master band width", learnable=False)
        for name, freq_hz in zip(BAND_WIDTH_NAMES, MATCH_EQ_CENTRES_HZ, strict=True)
    ]
    + [
        # The shared reverb bus (mixing.dsp.reverb); silent while every track's send is off.
        ParamSpec("master_reverb_decay_s", "Decay (RT60)", "s", 0.2, 8.0, 1.8, "log", "master reverb",
                  learnable=False),
        ParamSpec("master_reverb_predelay_ms", "Pre-delay", "ms", 0.0, 100.0, 20.0, "linear", "master reverb",
                  learnable=False),
        ParamSpec("master_reverb_damping_hz", "Damping (highs decay faster above)", "Hz", 1000.0, 20000.0, 6000.0,
                  "log", "master reverb", learnable=False),
        ParamSpec("master_reverb_return_db", "Return level", "dB", -30.0, 6.0, 0.0, "linear", "master reverb",
                  learnable=False),
    ]
    + [
        ParamSpec("master_width_pct", "Stereo width", "%", 0.0, 200.0, 100.0, "linear", "master output"),
        ParamSpec("master_balance_pct", "Balance", "%", -100.0, 100.0, 0.0, "linear", "master output",
                  learnable=False),
        # The ceiling takes some loudness off a mix it limits; the automatic mix sets this so that the
        # result measures the reference's loudness (mixing.master_match).
        ParamSpec("master_loudness_lufs", "Loudness before the ceiling", "LUFS", -30.0, -6.0, -14.0, "linear",
                  "master output", learnable=False),
        ParamSpec("master_ceiling_dbtp", "Ceiling", "dBTP", -6.0, -1.0, -1.0, "linear", "master output",
                  learnable=False),
        # How far past the loudness the mix is pushed into the ceiling (above 0: the peaks are cut harder and
        # the crest factor falls; below 0: the ceiling cuts less and the mix ends quieter). Master matching sets
        # it from the reference's crest factor (mixing.master_match).
        ParamSpec("master_limiter_drive_db", "Limiter drive", "dB", -12.0, 12.0, 0.0, "linear", "master output",
                  learnable=False),
    ]
)

TRACK_SPECS = {spec.name: spec for spec in TRACK_PARAMS}
MASTER_SPECS = {spec.name: spec for spec in MASTER_PARAMS}
LEARNABLE_TRACK_PARAMS = tuple(spec for spec in TRACK_PARAMS if spec.learnable)
LEARNABLE_MASTER_PARAMS = tuple(spec for spec in MASTER_PARAMS if spec.learnable)


def defaults(specs: Iterable[ParamSpec]) -> dict[str, float]:
    return {spec.name: spec.default for spec in specs}


def normalize_tensor(values: Mapping[str, torch.Tensor | float], specs: Sequence[ParamSpec]) -> torch.Tensor:
    """Stack values in units into normalized form.

    Returns a tensor of shape ``(..., params)`` in the order of ``specs``.
    """
    columns = [torch.as_tensor(spec.normalize(torch.as_tensor(values[spec.name], dtype=torch.float32)))
               for spec in specs]
    return torch.stack(columns, dim=-1)


def denormalize_tensor(norm: torch.Tensor, specs: Sequence[ParamSpec]) -> dict[str, torch.Tensor]:
    """Split normalized values of shape ``(..., params)`` into a dict of values in units.

    Values are clamped to [0, 1] first so that an unconstrained optimizer step
    can never leave the schema's range.
    """
    if norm.shape[-1] != len(specs):
        raise ValueError(f"expected {len(specs)} parameters in the last dimension, got shape {tuple(norm.shape)}")
    norm = norm.clamp(0.0, 1.0)
    return {spec.name: spec.denormalize(norm[..., i]) for i, spec in enumerate(specs)}


@dataclass
class MixParams:
    """Parameters of one mix in units: one dict per track (in stem order) and one for the master bus."""

    tracks: list[dict[str, float]]
    master: dict[str, float]

    @classmethod
    def default(cls, num_tracks: int) -> MixParams:
        return cls([defaults(TRACK_PARAMS) for _ in range(num_tracks)], defaults(MASTER_PARAMS))

    def to_preset(self, track_names: Sequence[str] | None = None) -> dict:
        """A JSON-ready preset. Track names, when given, let a preset be applied by name."""
        names = list(track_names) if track_names is not None else [f"Track {i + 1}" for i in range(len(self.tracks))]
        if len(names) != len(self.tracks):
            raise ValueError(f"{len(names)} track names for {len(self.tracks)} tracks")
        return {
            "schema_version": SCHEMA_VERSION,
            "tracks": [{"name": name, "params": dict(values)} for name, values in zip(names, self.tracks, strict=True)],
            "master": dict(self.master),
        }

    @classmethod
    def from_preset(cls, preset: Mapping, track_names: Sequence[str] | None = None) -> MixParams:
        """Validate a preset against the schema and return its parameters.

        Missing parameters take their defaults. With ``track_names``, tracks are
        matched by name, falling back to position; tracks the preset lacks get defaults.
        Raises PresetError naming the first problem found.
        """
        if not isinstance(preset, Mapping):
            raise PresetError("a preset must be a JSON object")
        version = preset.get("schema_version")
        if isinstance(version, bool) or version not in READABLE_SCHEMA_VERSIONS:
            readable = " and ".join(map(str, READABLE_SCHEMA_VERSIONS))
            raise PresetError(f"preset schema_version is {version!r}; this console reads versions {readable}")
        raw_tracks = preset.get("tracks", [])
        if not isinstance(raw_tracks, list):
            raise PresetError("'tracks' must be a list")
        tracks = []
        for i, entry in enumerate(raw_tracks):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("params", {}), Mapping):
                raise PresetError(f"track {i + 1}: expected an object with 'name' and 'params'")
            name = str(entry.get("name", f"Track {i + 1}"))
            tracks.append((name, _validated(entry.get("params", {}), TRACK_SPECS, f"track {i + 1}")))
        master = _validated(preset.get("master", {}), MASTER_SPECS, "master")

        if track_names is None:
            return cls([values for _, values in tracks], master)
        by_name = {name: values for name, values in tracks}
        chosen = []
        for i, name in enumerate(track_names):
            if name in by_name:
                chosen.append(by_name[name])
            elif i < len(tracks):
                chosen.append(tracks[i][1])
            else:
                chosen.append(defaults(TRACK_PARAMS))
        return cls(chosen, master)


def _validated(values, specs: Mapping[str, ParamSpec], where: str) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise PresetError(f"{where}: parameters must be an object")
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise PresetError(f"{where}: unknown parameter {unknown[0]!r}")
    result = {}
    for name, spec in specs.items():
        value = values.get(name, spec.default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PresetError(f"{where}: {name} must be a finite number, got {value!r}")
        if not spec.min <= value <= spec.max:
            raise PresetError(f"{where}: {name} = {value} {spec.unit} is outside [{spec.min}, {spec.max}]")
        result[name] = float(value)
    return result


def schema_dict() -> dict:
    """The whole schema as JSON, for the web sliders and for checkpoints."""
    return {
        "schema_version": SCHEMA_VERSION,
        "track": [spec.to_dict() for spec in TRACK_PARAMS],
        "master": [spec.to_dict() for spec in MASTER_PARAMS],
    }
