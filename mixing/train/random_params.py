"""Random but plausible console settings: the hidden "engineer" of training method 1.

Diff-MST's method 1 (seed 002, section 3) mixes the input tracks with random
console parameters to make a reference whose parameters are known. Uniform
draws over the whole schema would make mostly absurd mixes (a track at
-36 dB, +18 dB EQ boosts, compressors that never engage), so the draws here
stay where mixes actually live. The quality benchmark reuses this function to
make references with known ground-truth parameters.
"""
from __future__ import annotations

import copy
import math

import torch

from mixing.dsp.console import IncrementalRenderer
from mixing.fit import MAX_LEVEL_DROP_DB
from mixing.params import (
    BAND_WIDTH_NAMES,
    MASTER_SPECS,
    MATCH_EQ_GAIN_NAMES,
    MATCH_EQ_LR_NAMES,
    TRACK_INPUT_LUFS,
    TRACK_SPECS,
    MixParams,
    ParamSpec,
)

TRACK_GAIN_RANGE_DB = (-12.0, 12.0)
TRACK_EQ_GAIN_RANGE_DB = (-6.0, 6.0)
MASTER_EQ_GAIN_RANGE_DB = (-3.0, 3.0)
PEAK_Q_RANGE = (0.5, 3.0)
SHELF_Q_RANGE = (0.5, 1.0)
COMP_RATIO_RANGE = (1.0, 4.0)
MASTER_COMP_RATIO_RANGE = (1.0, 3.0)
# Threshold relative to the estimated loudness of the signal reaching the compressor.
# Peaks of music sit some 8-15 dB above its loudness, so anything up to +6 dB still
# catches the peaks and down to -10 dB compresses most of the signal.
COMP_THRESHOLD_OFFSET_DB = (-10.0, 6.0)
COMP_ATTACK_RANGE_MS = (1.0, 50.0)
COMP_RELEASE_RANGE_MS = (30.0, 500.0)
COMP_KNEE_RANGE_DB = (1.0, 9.0)
PAN_RANGE_PCT = (-80.0, 80.0)
MASTER_WIDTH_RANGE_PCT = (60.0, 150.0)
MASTER_LOUDNESS_RANGE_LUFS = (-16.0, -9.0)
# Track levels at or below this are silence, which no fader lifts.
_SILENT_DB = -100.0


def random_plausible_params(num_tracks: int, generator: torch.Generator) -> MixParams:
    """Draw console parameters that a mix engineer might plausibly have set.

    Per track: gain uniform in +-12 dB around the equal-loudness balance
    (gain_db = 0 after the input trim), every EQ band's gain uniform in +-6 dB
    at a log-uniform frequency within the band's range (peak Q 0.5-3, shelf
    Q 0.5-1), a compressor with log-uniform ratio 1-4, attack 1-50 ms,
    release 30-500 ms, knee 1-9 dB and a threshold 10 dB below to 6 dB above
    the track's loudness after its gain (so it engages), and pan uniform in
    +-80 %. Master: EQ gains +-3 dB, ratio 1-3 with the threshold placed the
    same way against the summed tracks' estimated loudness, width 60-150 %,
    loudness -16 to -9 LUFS, ceiling -1 dBTP, balance centred, match EQ flat.

    Every value lies inside the schema's range. The draws use only
    ``generator`` (global random state is left alone), so a seeded generator
    gives the same parameters every time.
    """
    if num_tracks < 1:
        raise ValueError(f"num_tracks must be at least 1, got {num_tracks}")

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    def log_uniform(low: float, high: float) -> float:
        return math.exp(uniform(math.log(low), math.log(high)))

    def draw_eq(specs: dict[str, ParamSpec], prefix: str, gain_range_db: tuple[float, float]) -> dict[str, float]:
        values = {}
        for name, spec in specs.items():
            if not name.startswith(f"{prefix}eq_") or not name.endswith("_freq_hz"):
                continue
            band = name[: -len("_freq_hz")]
            q_range = SHELF_Q_RANGE if "shelf" in band else PEAK_Q_RANGE
            values[name] = log_uniform(spec.min, spec.max)
            values[f"{band}_gain_db"] = uniform(*gain_range_db)
            values[f"{band}_q"] = log_uniform(*q_range)
        return values

    def draw_compressor(prefix: str, signal_lufs: float, ratio_range: tuple[float, float]) -> dict[str, float]:
        return {
            f"{prefix}comp_threshold_db": signal_lufs + uniform(*COMP_THRESHOLD_OFFSET_DB),
            f"{prefix}comp_ratio": log_uniform(*ratio_range),
            f"{prefix}comp_attack_ms": log_uniform(*COMP_ATTACK_RANGE_MS),
            f"{prefix}comp_release_ms": log_uniform(*COMP_RELEASE_RANGE_MS),
            f"{prefix}comp_knee_db": uniform(*COMP_KNEE_RANGE_DB),
        }

    tracks = []
    for _ in range(num_tracks):
        gain_db = uniform(*TRACK_GAIN_RANGE_DB)
        values = {"gain_db": gain_db, "pan_pct": uniform(*PAN_RANGE_PCT)}
        values.update(draw_eq(TRACK_SPECS, "", TRACK_EQ_GAIN_RANGE_DB))
        values.update(draw_compressor("", TRACK_INPUT_LUFS + gain_db, COMP_RATIO_RANGE))
        # Off, from no random number, as the expander below: Diff-MST's console has no reverb.
        values["reverb_send_db"] = TRACK_SPECS["reverb_send_db"].default
        # Off likewise: the neural tone is an experimental studio stage, no part of the references.
        values["tone_amount_pct"] = TRACK_SPECS["tone_amount_pct"].default
        tracks.append(_clamped(values, TRACK_SPECS))

    # Uncorrelated tracks add in power, so this estimates the loudness of the sum.
    mix_lufs = TRACK_INPUT_LUFS + 10.0 * math.log10(sum(10.0 ** (row["gain_db"] / 10.0) for row in tracks))
    master = {
        "master_width_pct": uniform(*MASTER_WIDTH_RANGE_PCT),
        "master_loudness_lufs": uniform(*MASTER_LOUDNESS_RANGE_LUFS),
        "master_ceiling_dbtp": -1.0,
        "master_balance_pct": 0.0,
        # The match EQ (both curves) is flat: matching sets it; Diff-MST's console has none.
        **{name: 0.0 for name in (*MATCH_EQ_GAIN_NAMES, *MATCH_EQ_LR_NAMES)},
        # Full width in every band, drawn from no random number, for the same reason as the expander below.
        **{name: 100.0 for name in BAND_WIDTH_NAMES},
        # Off, and drawn from no random number: the references stay those of Diff-MST's console, which has no
        # expander, and the sessions drawn before the expander existed stay the same.
        "master_expander_threshold_db": MASTER_SPECS["master_expander_threshold_db"].default,
        "master_expander_ratio": 1.0,
        # The reverb bus (silent with every send off) and the limiter drive stay at their defaults likewise.
        **{spec.name: spec.default for spec in MASTER_SPECS.values() if spec.group == "master reverb"},
        "master_limiter_drive_db": 0.0,
    }
    master.update(draw_eq(MASTER_SPECS, "master_", MASTER_EQ_GAIN_RANGE_DB))
    master.update(draw_compressor("master_", mix_lufs, MASTER_COMP_RATIO_RANGE))
    return MixParams(tracks, _clamped(master, MASTER_SPECS))


def lift_buried_tracks(params: MixParams, renderer: IncrementalRenderer, *,
                       max_drop_db: float = MAX_LEVEL_DROP_DB) -> MixParams:
    """``params`` with each track that sits more than ``max_drop_db`` below the loudest raised to that distance.

    :func:`random_plausible_params` cannot hear the tracks, and its gains, EQs
    and compressors together can bury one: on the quality bench's six sessions
    11 of 48 tracks ended 20-34 dB below the loudest. No mixing method here may
    go there (the fit's balance floor), and no engineer would. A track's level
    is its RMS after its strip and pan (:meth:`IncrementalRenderer.track_levels`)
    on the renderer's tracks; the renderer keeps their strips, so a render with
    the result re-processes only the lifted tracks. The fader and the
    compressor's threshold rise together, so the compressor works on the raised
    track as it did before and the level rises by exactly the lift (unless the
    schema's limits clamp either). Silent tracks are left alone.
    """
    levels_db = renderer.track_levels(params)
    loudest_db = max(levels_db)
    lifted = copy.deepcopy(params)
    for row, level_db in zip(lifted.tracks, levels_db, strict=True):
        lift_db = loudest_db - max_drop_db - level_db
        if lift_db > 0 and level_db > _SILENT_DB:
            row["gain_db"] = TRACK_SPECS["gain_db"].clamp(row["gain_db"] + lift_db)
            row["comp_threshold_db"] = TRACK_SPECS["comp_threshold_db"].clamp(row["comp_threshold_db"] + lift_db)
    return lifted


def _clamped(values: dict[str, float], specs: dict[str, ParamSpec]) -> dict[str, float]:
    missing = sorted(set(specs) - set(values))
    if missing:
        raise RuntimeError(f"random_plausible_params drew no value for {missing[0]}")
    return {name: spec.clamp(float(values[name])) for name, spec in specs.items()}
