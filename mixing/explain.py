"""What the mix did: each track's EQ curve, compressor gain reduction, pan and level, and the master's match EQ
and width per band against the reference.

Everything is read off the console itself, so the charts cannot drift from the sound: the EQ curves evaluate
the biquads of ``mixing.dsp.eq.band_coefficients`` (the coefficients the renders filter with) on the unit
circle, and the gain reduction is the trace of the strip's own compressor kernel
(``mixing.dsp.compressor.compressor_gain_db``) on what that compressor hears (``strip_before_compressor``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping, Sequence

import numpy as np
import torch

from mixing.dsp.compressor import compressor_gain_db
from mixing.dsp.console import IncrementalRenderer
from mixing.dsp.eq import band_coefficients, eq_param_names
from mixing.dsp.pan import pan_gains
from mixing.dsp.stages import param_columns, strip_before_compressor
from mixing.params import (
    BAND_WIDTH_NAMES,
    MATCH_EQ_CENTRES_HZ,
    MATCH_EQ_GAIN_NAMES,
    MATCH_EQ_LR_NAMES,
    TRACK_PARAMS,
    MixParams,
)

# Enough points for a smooth curve on a card (the narrowest band the schema allows, Q 8, spans ~6 of them),
# few enough to store one curve per track with each version.
EQ_CURVE_POINTS = 256
EQ_CURVE_MIN_HZ = 20.0
EQ_CURVE_MAX_HZ = 20000.0
GAIN_REDUCTION_POINTS = 300
# A side this far below the mid is mono to any ear; a mix of centred mono tracks has none at all (-inf).
SIDE_MINUS_MID_FLOOR_DB = -60.0
# compressor()'s argument order.
_COMPRESSOR_NAMES = ("comp_threshold_db", "comp_ratio", "comp_attack_ms", "comp_release_ms", "comp_knee_db")
# -120 dB: a silent track reports a finite level.
_MEAN_SQUARE_FLOOR = 1e-12


def eq_curve_freqs_hz(sample_rate: int, points: int = EQ_CURVE_POINTS) -> np.ndarray:
    """Log-spaced frequencies (points,) from 20 Hz to 20 kHz or just below Nyquist, where the curves are read."""
    top_hz = min(EQ_CURVE_MAX_HZ, 0.99 * sample_rate / 2)
    return np.geomspace(EQ_CURVE_MIN_HZ, top_hz, points)


def eq_curve_db(values: Mapping[str, float], sample_rate: int, freqs_hz: np.ndarray, prefix: str = "") -> np.ndarray:
    """Magnitude response in dB (points,) at ``freqs_hz`` of the 6-band EQ set by ``values`` (the schema's
    ``{prefix}eq_*`` names in units): the product over bands of |B(z) / A(z)| at z = e^{j 2 pi f / sample_rate}."""
    params = {name: torch.tensor([float(values[name])], dtype=torch.float64) for name in eq_param_names(prefix)}
    z_inverse = np.exp(-2j * np.pi * np.asarray(freqs_hz, dtype=np.float64) / sample_rate)
    powers = np.stack([np.ones_like(z_inverse), z_inverse, z_inverse**2])  # (3, points)
    response = np.ones_like(z_inverse)
    for b, a in band_coefficients(params, sample_rate, prefix):
        response = response * (b[0].numpy() @ powers) / (a[0].numpy() @ powers)
    return 20.0 * np.log10(np.abs(response))


def downsampled_minimum(trace: torch.Tensor, points: int) -> torch.Tensor:
    """The minimum of each of ``points`` equal segments of ``trace`` (samples,): a gain reduction's deepest
    value per segment, so a short, deep reduction stays visible. Fewer points for a shorter trace."""
    points = max(1, min(points, trace.shape[-1]))
    starts = np.linspace(0, trace.shape[-1], points + 1)[:-1].round().astype(np.int64)
    return torch.from_numpy(np.minimum.reduceat(trace.detach().cpu().numpy(), starts))


def gain_reduction_db(audio: torch.Tensor, values: Mapping[str, float], sample_rate: int,
                      points: int = GAIN_REDUCTION_POINTS, *, exact_iir: bool = True) -> list[float]:
    """The gain (dB, <= 0) that a track strip with ``values`` (TRACK_PARAMS in units) applies in its compressor
    to ``audio`` (channels, samples), as the deepest value in each of ``points`` equal segments."""
    return gain_reductions_db([audio], [values], sample_rate, points, exact_iir=exact_iir)[0]


def gain_reductions_db(tracks: Sequence[torch.Tensor], rows: Sequence[Mapping[str, float]], sample_rate: int,
                       points: int = GAIN_REDUCTION_POINTS, *, exact_iir: bool = True,
                       batch_tracks: int = 2) -> list[list[float]]:
    """:func:`gain_reduction_db` of each of ``tracks`` with its row of ``rows``. A ratio of 1 applies no gain,
    so it is not run; up to ``batch_tracks`` tracks of one shape go through as one batch, which the compiled
    EQ and compressor spread over the cores (as ``mixing.dsp.stages.strips_before_pan`` does)."""
    reductions: list[list[float] | None] = [
        [0.0] * max(1, min(points, track.shape[-1])) if float(row["comp_ratio"]) == 1.0 else None
        for track, row in zip(tracks, rows, strict=True)]
    pending = [index for index, reduction in enumerate(reductions) if reduction is None]
    while pending:
        group = [index for index in pending if tracks[index].shape == tracks[pending[0]].shape][:batch_tracks]
        pending = [index for index in pending if index not in group]
        params = param_columns([rows[index] for index in group], TRACK_PARAMS, tracks[group[0]].device)
        heard = strip_before_compressor(torch.stack([tracks[index].float() for index in group]), sample_rate,
                                        params, exact_iir)
        traces = compressor_gain_db(heard, sample_rate, *(params[name] for name in _COMPRESSOR_NAMES))
        del heard
        for index, trace in zip(group, traces, strict=True):
            reductions[index] = [round(float(v), 2) for v in downsampled_minimum(trace, points)]
    return reductions


def _db(mean_square: float) -> float:
    return round(10.0 * math.log10(mean_square + _MEAN_SQUARE_FLOOR), 2)


def track_explanations(renderer: IncrementalRenderer, params: MixParams, active: Sequence[bool], *,
                       names: Sequence[str] | None = None, cache: MutableMapping | None = None) -> list[dict]:
    """Per track of ``params``: its EQ curve, gain reduction over time, pan and level.

    ``active``: which tracks play. The compressor is read on what the renderer's strips hear
    (:meth:`~mixing.dsp.console.IncrementalRenderer.strip_input`: the trimmed stems after the tone stage).
    ``level_db`` is the track's RMS after its strip and pan (dBFS, mean of the two channels, before the master
    bus); ``level_in_mix_db`` that level less the RMS of the sum of the playing tracks (None for a track that
    does not play). ``cache`` (any dict kept between calls) keeps each gain reduction by track and strip
    settings (the latest per track), so a re-render that pans a track or mutes one runs no compressor again.
    """
    sample_rate = renderer.sample_rate
    freqs_hz = eq_curve_freqs_hz(sample_rate)
    outputs = renderer.strip_outputs(params)
    mix = torch.zeros(2, renderer.samples, dtype=torch.float64, device=renderer.device)
    for index, (values, processed) in enumerate(zip(params.tracks, outputs, strict=True)):
        left_right = pan_gains(torch.tensor([float(values["pan_pct"])]), processed.shape[0])[0].tolist()
        if active[index]:
            for channel in range(2):
                mix[channel].add_(processed[min(channel, processed.shape[0] - 1)], alpha=left_right[channel])
    mix_db = _db(float(mix.square().mean()))
    del mix
    levels_db = renderer.track_levels(params)
    cache = cache if cache is not None else {}
    # The compressor hears the track after the tone stage, which its family's model shapes.
    strips = [({name: float(value) for name, value in values.items() if name != "pan_pct"},
               renderer.tone.active_family(index, float(values.get("tone_amount_pct", 0.0))))
              for index, values in enumerate(params.tracks)]
    stale = [index for index, strip in enumerate(strips) if cache.get(index, (None,))[0] != strip]
    for index, reduction in zip(stale, gain_reductions_db([renderer.strip_input(index, params.tracks[index])
                                                           for index in stale],
                                                          [params.tracks[index] for index in stale], sample_rate,
                                                          exact_iir=renderer.device.type == "cpu"), strict=True):
        cache[index] = (strips[index], reduction)
    explained = []
    for index, values in enumerate(params.tracks):
        reduction = cache[index][1]
        explained.append({
            "name": names[index] if names is not None else f"Track {index + 1}",
            "eq_db": [round(float(v), 2) for v in eq_curve_db(values, sample_rate, freqs_hz)],
            "gain_reduction_db": reduction,
            "pan_pct": float(values["pan_pct"]),
            "gain_db": float(values["gain_db"]),
            "level_db": round(levels_db[index], 2),
            "level_in_mix_db": round(levels_db[index] - mix_db, 2) if active[index] else None,
        })
    return explained


def master_explanation(master: Mapping[str, float], features: Mapping[str, Mapping | None],
                       sample_rate: int) -> dict:
    """The master's EQ curve, and per match EQ band its gain, left-minus-right gain and side width, with the
    mid and side bark spectra (dB) of the mix and the reference (``features``: the analysis's ``features``,
    :func:`mixing.analysis.analyse`, whose ``bark_spectrum_db`` and ``side_bark_spectrum_db`` share the
    match EQ's bands). ``side_minus_mid_db`` (floored at ``SIDE_MINUS_MID_FLOOR_DB``) is what the widths move
    toward the reference's."""
    spectra = {}
    for name in ("mix", "reference"):
        summary = features.get(name)
        if summary is None:
            continue
        mid_db, side_db = summary["bark_spectrum_db"], summary["side_bark_spectrum_db"]
        spectra[name] = {"mid_db": list(mid_db), "side_db": list(side_db),
                         "side_minus_mid_db": [round(max(side - mid, SIDE_MINUS_MID_FLOOR_DB), 2)
                                               for mid, side in zip(mid_db, side_db, strict=True)]}
    freqs_hz = eq_curve_freqs_hz(sample_rate)
    return {
        "eq_freqs_hz": [round(float(f), 1) for f in freqs_hz],
        "eq_db": [round(float(v), 2) for v in eq_curve_db(master, sample_rate, freqs_hz, "master_")],
        "band_centres_hz": [round(f, 1) for f in MATCH_EQ_CENTRES_HZ],
        "match_eq_gain_db": [float(master[name]) for name in MATCH_EQ_GAIN_NAMES],
        "match_eq_lr_db": [float(master[name]) for name in MATCH_EQ_LR_NAMES],
        "band_width_pct": [float(master[name]) for name in BAND_WIDTH_NAMES],
        "width_pct": float(master["master_width_pct"]),
        "spectra": spectra,
    }
