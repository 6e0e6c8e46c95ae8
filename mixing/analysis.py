"""The analysis report of a mix against its reference: what the studio shows and ``python -m mixing metrics`` prints.

:func:`analyse` returns the ``Analysis`` object of docs/API.md, JSON-ready:
the AF features of the mix, the reference and (optionally) the equal-loudness
baseline, the AF loss of the mix and of the baseline against the reference
with each weighted term (they add up to ``total``), loudness and true peak of
each, per-track levels, and one plain-language reading per dimension.

How the features are measured (all on the whole signal except the spectra):

* ``rms`` (linear), ``crest_factor_db``: mean over the two channels of the
  per-channel values of :mod:`mixing.features`; ``stereo_width`` (side/mid
  energy ratio) and ``stereo_imbalance`` (in [-1, 1], positive = right louder).
* The bark spectrum is the long-term mean STFT magnitude of the mid (L + R)
  and side (L - R) signals, as Diff-MST's code takes it
  (:data:`mixing.features.PAPER_BARK`: 32768-point frames, no window),
  estimated from :data:`SPECTRUM_WINDOWS` windows of :data:`SPECTRUM_WINDOW_S`
  spread evenly over the song (30 s of a 3-minute song: a long-term average
  changes little; songs up to 30 s are taken whole). ``bark_spectrum_db``
  (mid) and ``side_bark_spectrum_db`` (side) show them halved, in dB
  relative to ``n_fft / 2``: a full-scale sine in both channels reads 0 dB
  when it sits on an FFT bin and up to about 7 dB more elsewhere (the
  rectangular window's leakage), and broadband sound reads higher in the wide
  upper bands, which sum more bins; the AF loss compares their natural log,
  as equation 5 does.
* The tone readings use the power in 1/3-octave bands of the same windows
  (:func:`mixing.spectra.long_term_spectrum`): the share of the total power
  below :data:`LOW_MAX_HZ`, between it and :data:`HIGH_MIN_HZ` (bands are
  assigned by their centre frequency), and above.

Readings (one per dimension, in this order), each "matches the reference"
within its tolerance:

===========  =============================================  ===========
dimension    compared                                       tolerance
===========  =============================================  ===========
loudness     integrated loudness (BS.1770)                  1 LU
dynamics     crest factor                                   1.5 dB
width        side/centre energy ratio in dB (floor -40 dB)  3 dB
balance      right-minus-left level in dB                   1 dB
low end      share of power below 150 Hz, in dB             3 dB
midrange     share of power 150 Hz - 4 kHz, in dB           1.5 dB
top end      share of power above 4 kHz, in dB              3 dB
===========  =============================================  ===========

The midrange holds most of a song's power, so a small change of its share is
already a large tonal shift; hence its tighter tolerance.

Cost on a 3-minute stereo mix (2-core CPU): about 0.7 s of CPU time per
signal, mostly the BS.1770 filtering and the true-peak interpolation; the
signals are measured in threads. Each track in ``tracks`` adds about 0.3 s.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from mixing import features, spectra
from mixing.dsp.limiter import true_peak_dbtp
from mixing.losses import AudioFeatureLoss
from mixing.loudness import gated_loudness_lufs, gating_block_powers, integrated_loudness_lufs

SPECTRUM_WINDOWS = 12
SPECTRUM_WINDOW_S = 2.5
ENVELOPE_POINTS = 200
ENVELOPE_FLOOR_DB = -120.0
LOW_MAX_HZ = 150.0
HIGH_MIN_HZ = 4000.0
LOUDNESS_TOLERANCE_LU = 1.0
CREST_TOLERANCE_DB = 1.5
WIDTH_TOLERANCE_DB = 3.0
WIDTH_FLOOR_DB = -40.0
BALANCE_TOLERANCE_DB = 1.0
TONE_TOLERANCES_DB = {"low": 3.0, "mid": 1.5, "high": 3.0}
# Names of the loss terms in the API (docs/API.md), by feature name.
_LOSS_KEYS = {"rms": "rms", "crest_factor_db": "crest_factor", "bark_spectrum": "bark_spectrum",
              "stereo_width": "stereo_width", "stereo_imbalance": "stereo_imbalance"}
_TONE_WORDS = {
    "low": ("low end", f"below {LOW_MAX_HZ:.0f} Hz"),
    "mid": ("midrange", f"{LOW_MAX_HZ:.0f} Hz-{HIGH_MIN_HZ / 1000:.0f} kHz"),
    "high": ("top end", f"above {HIGH_MIN_HZ / 1000:.0f} kHz"),
}


def _check_stereo(audio: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor):
        audio = torch.as_tensor(np.asarray(audio))
    if audio.dim() != 2 or audio.shape[0] != 2 or audio.shape[-1] == 0:
        raise ValueError(f"{what}: expected shape (2, samples), got {tuple(audio.shape)}")
    return audio.detach().cpu().float()


def spectrum_windows(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Evenly spread windows of ``audio`` (channels, samples): (windows, channels, window_samples).

    The whole signal as one window when it is not longer than the windows together.
    """
    window = round(SPECTRUM_WINDOW_S * sample_rate)
    samples = audio.shape[-1]
    if samples <= SPECTRUM_WINDOWS * window:
        return audio.unsqueeze(0)
    starts = torch.linspace(0, samples - window, SPECTRUM_WINDOWS).round().long().tolist()
    return torch.stack([audio[:, start : start + window] for start in starts])


def measure(audio: torch.Tensor, sample_rate: int) -> dict:
    """Everything the report needs of one stereo signal (2, samples).

    Returns ``features`` (AF features as tensors of batch 1, what
    :class:`mixing.losses.AudioFeatureLoss` compares), ``loudness_lufs`` and
    ``tone_db`` (low/mid/high power shares in dB). Safe to call from several
    threads at once.
    """
    audio = _check_stereo(audio, "audio")
    batch = audio.unsqueeze(0)
    windows = spectrum_windows(audio, sample_rate)
    with torch.no_grad():
        # Eq. 5 averages magnitudes over frames; windows of equal length average the same way.
        band_magnitude = (features.bark_spectrum(windows, sample_rate, convention=features.PAPER_BARK).exp()
                          - features.LOG_EPS).mean(dim=0)
        af_features = {
            "rms": features.rms(batch),
            "crest_factor_db": features.crest_factor_db(batch),
            "bark_spectrum": torch.log(band_magnitude + features.LOG_EPS).unsqueeze(0),
            "stereo_width": features.stereo_width(batch),
            "stereo_imbalance": features.stereo_imbalance(batch),
        }
    spectrum = spectra.long_term_spectrum(windows.transpose(0, 1).reshape(2, -1), sample_rate)
    band_power = 10.0 ** (spectrum["db"] / 10.0)
    low = spectrum["freqs_hz"] < LOW_MAX_HZ
    high = spectrum["freqs_hz"] >= HIGH_MIN_HZ
    total = max(float(band_power.sum()), 1e-30)
    tone_db = {name: 10.0 * math.log10(max(float(band_power[mask].sum()) / total, 1e-12))
               for name, mask in (("low", low), ("mid", ~low & ~high), ("high", high))}
    return {
        "features": af_features,
        "loudness_lufs": integrated_loudness_lufs(audio, sample_rate),
        "tone_db": tone_db,
    }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _feature_summary(af_features: dict[str, torch.Tensor]) -> dict:
    """F of docs/API.md from AF features of batch 1."""
    # A full-scale sine in both channels makes a mid of amplitude 2, and a sine of amplitude A on a bin has a
    # magnitude of A * n_fft / 2 there; halving mid and side reads such a sine at 0 dB.
    full_scale = features.PAPER_BARK.n_fft / 2
    mid_db, side_db = (20.0 * torch.log10(bands.exp() / 2 / full_scale + 1e-12)
                       for bands in af_features["bark_spectrum"][0])
    return {
        "rms": float(af_features["rms"].mean()),
        "crest_factor_db": float(af_features["crest_factor_db"].mean()),
        "stereo_width": float(af_features["stereo_width"][0]),
        "stereo_imbalance": float(af_features["stereo_imbalance"][0]),
        "bark_spectrum_db": [round(float(v), 3) for v in mid_db],
        "side_bark_spectrum_db": [round(float(v), 3) for v in side_db],
    }


def _loss_summary(loss_fn: AudioFeatureLoss, pred: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> dict:
    total, terms = loss_fn.compare(pred, ref)
    return {"total": float(total), **{_LOSS_KEYS[name]: float(value) for name, value in terms.items()}}


@dataclass(frozen=True)
class TrackLevelBasis:
    """What :func:`level_at_gain` reads of a track, kept so that its level after any gain costs no pass
    over the audio: ``block_powers`` (blocks,), its loudness gating blocks
    (``mixing.loudness.gating_block_powers``), and ``segment_mean_square`` (points,) float64, the mean
    square of each of its equal segments."""

    block_powers: np.ndarray
    segment_mean_square: torch.Tensor


def track_level_basis(track: torch.Tensor, sample_rate: int, points: int = ENVELOPE_POINTS) -> TrackLevelBasis:
    """The :class:`TrackLevelBasis` of a track (channels, samples), over ``points`` segments."""
    track = track.detach().cpu().float()
    if track.dim() != 2 or track.shape[-1] == 0:
        raise ValueError(f"expected a track of shape (channels, samples), got {tuple(track.shape)}")
    points = min(points, track.shape[-1])
    power = track.pow(2).mean(dim=0)
    edges = torch.linspace(0, power.shape[-1], points + 1).round().long()
    prefix = torch.nn.functional.pad(power.double().cumsum(dim=0), (1, 0))
    mean_square = (prefix[edges[1:]] - prefix[edges[:-1]]) / (edges[1:] - edges[:-1]).clamp_min(1)
    return TrackLevelBasis(gating_block_powers(track, sample_rate), mean_square)


def level_at_gain(basis: TrackLevelBasis, gain_db: float = 0.0) -> dict:
    """Loudness (None for silence) and RMS envelope of the track of ``basis`` scaled by ``gain_db``.

    ``envelope_db``: the RMS in dB of its segments, floored at :data:`ENVELOPE_FLOOR_DB`. The same numbers
    as a basis of the scaled track would give: gating and segments both work on powers.
    """
    power_gain = 10.0 ** (gain_db / 10.0)
    mean_square = basis.segment_mean_square * power_gain
    envelope_db = (10.0 * torch.log10(mean_square.clamp_min(1e-30))).clamp_min(ENVELOPE_FLOOR_DB)
    return {
        "loudness_lufs": _finite_or_none(gated_loudness_lufs(basis.block_powers * power_gain)),
        "envelope_db": [round(float(v), 2) for v in envelope_db],
    }


def measure_signals(signals: Mapping[str, torch.Tensor], sample_rate: int) -> dict[str, dict]:
    """:func:`measure` of each stereo signal (2, samples), by name, with its ``true_peak_dbtp`` added.

    What :func:`analyse` measures of each signal; a caller that analyses many mixes against the same
    reference and baseline measures those once and passes them to it.
    """
    return measure_signals_and_tracks(signals, [], sample_rate)[0]


def measure_signals_and_tracks(signals: Mapping[str, torch.Tensor],
                               tracks: Sequence[torch.Tensor | TrackLevelBasis],
                               sample_rate: int) -> tuple[dict[str, dict], list[TrackLevelBasis]]:
    """:func:`measure_signals` of ``signals`` and :func:`track_level_basis` of each of ``tracks`` (a basis
    given is kept as it is), in one thread pool."""
    checked = {name: _check_stereo(audio, name) for name, audio in signals.items()}
    # The heavy parts (IIR filtering, STFTs) release the GIL, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        signal_jobs = {name: pool.submit(measure, audio, sample_rate) for name, audio in checked.items()}
        track_jobs = [track if isinstance(track, TrackLevelBasis)
                      else pool.submit(track_level_basis, track, sample_rate) for track in tracks]
        measured = {name: job.result() for name, job in signal_jobs.items()}
        bases = [job if isinstance(job, TrackLevelBasis) else job.result() for job in track_jobs]
    # Not in the threads: true peak runs numba parallel loops, which numba's fallback
    # threading layer (workqueue) aborts on when they are entered from two threads at once.
    for name, audio in checked.items():
        measured[name]["true_peak_dbtp"] = true_peak_dbtp(audio, sample_rate)
    return measured, bases


def analyse(
    mix: torch.Tensor,
    reference: torch.Tensor,
    sample_rate: int,
    *,
    baseline: torch.Tensor | None = None,
    tracks: Sequence[torch.Tensor | TrackLevelBasis] | None = None,
    track_gains_db: Sequence[float] | None = None,
    track_names: Sequence[str] | None = None,
    track_ids: Sequence[str] | None = None,
    measured: Mapping[str, dict] | None = None,
) -> dict:
    """The Analysis object of docs/API.md for ``mix`` against ``reference``.

    mix, reference, baseline: (2, samples) each (lengths may differ).
    tracks: the processed or trimmed stems, each (channels, samples) or its
    :func:`track_level_basis` measured before, for ``track_levels`` (empty
    without them), each after its gain in ``track_gains_db`` (default 0 dB);
    ``track_names`` and ``track_ids`` (the API's stem ids; default the
    track's index) label them.
    measured: :func:`measure_signals` of any of ``mix``, ``reference`` and ``baseline`` (by those names)
    made before; they are not measured again. Without a baseline its entries are None. Non-finite values
    (the loudness of silence) are None, so the result passes ``json.dumps(allow_nan=False)``.
    """
    known = dict(measured or {})
    unknown_names = sorted(set(known) - {"mix", "reference", "baseline"})
    if unknown_names:
        raise ValueError(f"measured: expected mix, reference or baseline, not {unknown_names[0]!r}")
    signals = {"mix": mix, "reference": reference}
    if baseline is not None or "baseline" in known:
        signals["baseline"] = baseline
    tracks = list(tracks or [])
    names = list(track_names) if track_names is not None else [f"Track {i + 1}" for i in range(len(tracks))]
    ids = list(track_ids) if track_ids is not None else list(range(len(tracks)))
    gains_db = list(track_gains_db) if track_gains_db is not None else [0.0] * len(tracks)
    if not len(names) == len(ids) == len(gains_db) == len(tracks):
        raise ValueError(f"{len(tracks)} tracks with {len(names)} names, {len(ids)} ids and {len(gains_db)} gains")
    unmeasured = {name: audio for name, audio in signals.items() if name not in known}
    new, bases = measure_signals_and_tracks(unmeasured, tracks, sample_rate)
    measured = {**known, **new}
    loss_fn = AudioFeatureLoss(sample_rate, bark=features.PAPER_BARK)
    ref_features = measured["reference"]["features"]

    def per_signal(key: str) -> dict:
        return {name: _finite_or_none(measured[name][key]) if name in measured else None
                for name in ("mix", "reference", "baseline")}

    return {
        "features": {name: _feature_summary(measured[name]["features"]) if name in measured else None
                     for name in ("mix", "reference", "baseline")},
        "af_loss": {name: _loss_summary(loss_fn, measured[name]["features"], ref_features) if name in measured
                    else None for name in ("mix", "baseline")},
        "readings": readings(measured["mix"], measured["reference"]),
        "loudness_lufs": per_signal("loudness_lufs"),
        "true_peak_dbtp": per_signal("true_peak_dbtp"),
        "track_levels": [{"stem": stem_id, "name": name, **level_at_gain(basis, gain_db)}
                         for stem_id, name, basis, gain_db in zip(ids, names, bases, gains_db, strict=True)],
    }


def _width_db(af_features: dict[str, torch.Tensor]) -> float:
    return max(10.0 * math.log10(max(float(af_features["stereo_width"][0]), 1e-30)), WIDTH_FLOOR_DB)


def _balance_db(af_features: dict[str, torch.Tensor]) -> float:
    """Right-minus-left level in dB, from the imbalance (R - L) / (R + L) of powers."""
    imbalance = min(max(float(af_features["stereo_imbalance"][0]), -0.999), 0.999)
    return 10.0 * math.log10((1.0 + imbalance) / (1.0 - imbalance))


def _compared(difference: float, tolerance: float, *, lower: str, higher: str, same: str) -> str:
    """``same`` when ``difference`` (mix minus reference) is within ``tolerance``, else ``lower`` or ``higher``."""
    if abs(difference) <= tolerance:
        return same
    return higher if difference > 0 else lower


def readings(mix: dict, reference: dict) -> list[str]:
    """One sentence per dimension comparing two :func:`measure` results (see the module docstring)."""
    sentences = []
    mix_lufs, ref_lufs = mix["loudness_lufs"], reference["loudness_lufs"]
    if not math.isfinite(mix_lufs) or not math.isfinite(ref_lufs):
        sentences.append("Your mix is silent." if not math.isfinite(mix_lufs) else "The reference is silent.")
    else:
        levels = f"({mix_lufs:.1f} LUFS vs {ref_lufs:.1f} LUFS)"
        sentences.append(_compared(
            mix_lufs - ref_lufs, LOUDNESS_TOLERANCE_LU,
            lower=f"Your mix is quieter than the reference {levels}.",
            higher=f"Your mix is louder than the reference {levels}.",
            same=f"Your mix's loudness matches the reference {levels}.",
        ))

    mix_crest = float(mix["features"]["crest_factor_db"].mean())
    ref_crest = float(reference["features"]["crest_factor_db"].mean())
    crests = f"(crest factor {mix_crest:.1f} dB vs {ref_crest:.1f} dB)"
    sentences.append(_compared(
        mix_crest - ref_crest, CREST_TOLERANCE_DB,
        lower=f"Your mix is more compressed {crests}.",
        higher=f"Your mix is more dynamic {crests}.",
        same=f"Your mix's dynamics match the reference {crests}.",
    ))

    if float(reference["features"]["stereo_width"][0]) <= features.MONO_WIDTH_RATIO:
        # Matching leaves the stereo field out then (mixing.pipeline), so there is no gap to report.
        sentences.append("The reference is mono, so it sets no stereo width or left/right balance to match.")
    else:
        mix_width, ref_width = _width_db(mix["features"]), _width_db(reference["features"])
        widths = f"(side/centre {round(mix_width)} dB vs {round(ref_width)} dB)"
        sentences.append(_compared(
            mix_width - ref_width, WIDTH_TOLERANCE_DB,
            lower=f"Your mix is narrower than the reference {widths}.",
            higher=f"Your mix is wider than the reference {widths}.",
            same=f"Your mix's stereo width matches the reference {widths}.",
        ))

        lean_db = _balance_db(mix["features"]) - _balance_db(reference["features"])
        sentences.append(_compared(
            lean_db, BALANCE_TOLERANCE_DB,
            lower=f"Your mix leans left ({abs(lean_db):.1f} dB more to the left than the reference).",
            higher=f"Your mix leans right ({abs(lean_db):.1f} dB more to the right than the reference).",
            same="Your mix's left/right balance matches the reference.",
        ))

    for band, tolerance_db in TONE_TOLERANCES_DB.items():
        word, where = _TONE_WORDS[band]
        difference = mix["tone_db"][band] - reference["tone_db"][band]
        sentences.append(_compared(
            difference, tolerance_db,
            lower=f"Your mix has less {word} ({where}) than the reference ({difference:+.1f} dB).",
            higher=f"Your mix has more {word} ({where}) than the reference ({difference:+.1f} dB).",
            same=f"Your mix's {word} ({where}) matches the reference.",
        ))
    return sentences
