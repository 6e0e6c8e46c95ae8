"""Training pairs for the tone models: (raw, processed) mono clips of the loudest 10 s of a stem.

Pairs come from raw stems run through our own console's track strip (EQ + compressor, ``mixing.dsp.stages``)
with settings drawn around a family's typical tone (:data:`FAMILY_TONES`), or from a user's folder
(:func:`pairs_from_folder`). Each clip is loudness-normalised to :data:`CLIP_LUFS`, the processed one with the
gain of its raw one, so that level changes the processing makes are part of what the model learns... except the
strip's overall level, which the normalisation of each side removes.
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mixing.audio.names import is_audio_filename
from mixing.errors import MixingError
from mixing.loudness import normalize_to_lufs
from mixing.params import TRACK_PARAMS, defaults

CLIP_S = 10.0
CLIP_LUFS = -23.0
# Pitch shifts of the augmentation, in semitones: -4 to +4 in 50-cent steps, 0 (the clip itself) left out.
AUGMENT_SEMITONES = tuple(step / 2 for step in range(-8, 9) if step != 0)

# (mean, spread) of the strip settings per family, in TRACK_PARAMS units: a "typical tone" the model learns.
FAMILY_TONES: dict[str, dict[str, tuple[float, float]]] = {
    "vocal": {"eq_low_shelf_freq_hz": (150.0, 30.0), "eq_low_shelf_gain_db": (-9.0, 2.0),
              "eq_band3_freq_hz": (3500.0, 500.0), "eq_band3_gain_db": (4.0, 1.5),
              "eq_high_shelf_gain_db": (3.0, 1.0), "comp_threshold_db": (-24.0, 3.0), "comp_ratio": (4.0, 1.0)},
    "bass": {"eq_low_shelf_freq_hz": (80.0, 15.0), "eq_low_shelf_gain_db": (3.0, 1.0),
             "eq_band2_freq_hz": (400.0, 60.0), "eq_band2_gain_db": (-4.0, 1.5),
             "eq_high_shelf_gain_db": (-6.0, 2.0), "comp_threshold_db": (-22.0, 3.0), "comp_ratio": (4.0, 1.0)},
    "guitar": {"eq_low_shelf_freq_hz": (120.0, 20.0), "eq_low_shelf_gain_db": (-8.0, 2.0),
               "eq_band2_freq_hz": (800.0, 100.0), "eq_band2_gain_db": (-3.0, 1.0),
               "eq_band3_freq_hz": (2500.0, 400.0), "eq_band3_gain_db": (3.0, 1.0),
               "comp_threshold_db": (-20.0, 3.0), "comp_ratio": (2.5, 0.5)},
    "keys": {"eq_low_shelf_freq_hz": (150.0, 30.0), "eq_low_shelf_gain_db": (-5.0, 2.0),
             "eq_band2_freq_hz": (500.0, 80.0), "eq_band2_gain_db": (-2.5, 1.0),
             "eq_high_shelf_gain_db": (2.5, 1.0), "comp_threshold_db": (-18.0, 3.0), "comp_ratio": (2.0, 0.5)},
    "drums": {"eq_low_shelf_freq_hz": (70.0, 10.0), "eq_low_shelf_gain_db": (3.0, 1.0),
              "eq_band2_freq_hz": (400.0, 60.0), "eq_band2_gain_db": (-4.0, 1.5),
              "eq_band4_freq_hz": (6000.0, 800.0), "eq_band4_gain_db": (3.0, 1.0),
              "comp_threshold_db": (-18.0, 3.0), "comp_ratio": (3.0, 0.7)},
}


@dataclass(frozen=True)
class Pair:
    """One training clip: ``raw`` and ``processed`` mono float32 (samples,) at ``sample_rate``.

    ``source`` names the clip (recorded in the checkpoint); ``recording`` the raw recording it was cut from (its
    file path: generated sessions repeat stem names across folders), which the test split holds out whole;
    ``tone_params`` the strip settings that made the processed side (None for a user's pair), so that a test
    pair can be made again from its recording (:func:`console_pair`).
    """

    raw: np.ndarray
    processed: np.ndarray
    sample_rate: int
    source: str
    recording: str
    tone_params: Mapping[str, float] | None = None


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) or (samples,) -> (samples,) float32, the channel mean."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def loudest_window_start(audio: np.ndarray, sample_rate: int, window_s: float = CLIP_S) -> int:
    """First sample of the ``window_s`` window of mono ``audio`` (samples,) with the most energy (0 when the
    audio is shorter)."""
    window = int(window_s * sample_rate)
    if audio.shape[-1] <= window:
        return 0
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    return int(np.argmax(energy[window:] - energy[:-window]))


def loudest_clip_pair(raw: np.ndarray, processed: np.ndarray, sample_rate: int, source: str, recording: str,
                      tone_params: Mapping[str, float] | None = None) -> Pair | None:
    """The loudest ``CLIP_S`` of the processed stem and the same span of the raw one, both mono and normalised to
    ``CLIP_LUFS``; None when either is silent there."""
    raw, processed = to_mono(raw), to_mono(processed)
    length = min(raw.shape[-1], processed.shape[-1])
    start = loudest_window_start(processed[:length], sample_rate)
    span = slice(start, start + int(CLIP_S * sample_rate))
    raw_clip, raw_gain_db = normalize_to_lufs(raw[None, span], sample_rate, CLIP_LUFS)
    processed_clip, processed_gain_db = normalize_to_lufs(processed[None, span], sample_rate, CLIP_LUFS)
    if raw_gain_db == 0.0 or processed_gain_db == 0.0:
        return None
    return Pair(raw_clip[0].astype(np.float32), processed_clip[0].astype(np.float32), sample_rate, source,
                recording, tone_params)


def random_tone_params(family: str, rng: random.Random) -> dict[str, float]:
    """Track-strip settings (TRACK_PARAMS, units) around ``family``'s typical tone, each clamped to its range."""
    if family not in FAMILY_TONES:
        raise MixingError(f"unknown family {family!r}; expected one of {', '.join(FAMILY_TONES)}")
    specs = {spec.name: spec for spec in TRACK_PARAMS}
    params = defaults(TRACK_PARAMS)
    for name, (mean, spread) in FAMILY_TONES[family].items():
        params[name] = specs[name].clamp(rng.gauss(mean, spread))
    return params


def console_tone(audio: np.ndarray, sample_rate: int, params: Mapping[str, float]) -> np.ndarray:
    """Our console's track strip before the pan (gain, EQ, compressor; exact IIR EQ) on mono ``audio``
    (samples,); returns (samples,)."""
    from mixing.dsp.stages import param_columns, strip_before_pan

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).reshape(1, 1, -1)
    columns = param_columns([params], TRACK_PARAMS, x.device)
    with torch.no_grad():
        return strip_before_pan(x, sample_rate, columns, exact_iir=True)[0, 0].numpy()


def console_pair(raw: np.ndarray, sample_rate: int, tone_params: Mapping[str, float], source: str,
                 recording: str) -> Pair | None:
    """A pair whose processed side is ``raw`` (channels, samples) through :func:`console_tone` with
    ``tone_params`` (e.g. :func:`random_tone_params`); the loudest clip is chosen on the raw stem and processed
    alone (the strip's compressor state at the clip's start is what 10 s of warm-up would give only
    approximately). Deterministic: the same recording and settings give the same pair."""
    mono = to_mono(raw)
    start = loudest_window_start(mono, sample_rate)
    clip = mono[start:start + int(CLIP_S * sample_rate)]
    clip, gain_db = normalize_to_lufs(clip[None], sample_rate, CLIP_LUFS)
    if gain_db == 0.0:
        return None
    return loudest_clip_pair(clip[0], console_tone(clip[0], sample_rate, tone_params), sample_rate, source,
                             recording, dict(tone_params))


def pitch_shifted(pair: Pair, semitones: float) -> Pair:
    """Both sides of ``pair`` shifted by ``semitones`` (librosa's phase vocoder + resampling)."""
    import librosa

    def shift(audio: np.ndarray) -> np.ndarray:
        return librosa.effects.pitch_shift(audio, sr=pair.sample_rate, n_steps=semitones).astype(np.float32)

    return Pair(shift(pair.raw), shift(pair.processed), pair.sample_rate, f"{pair.source} {semitones:+.1f} st",
                pair.recording, pair.tone_params)


def pairs_from_folder(folder: Path, sample_rate: int) -> list[Pair]:
    """A user's pairs: ``folder/raw/NAME.ext`` with ``folder/processed/NAME.ext`` (the same file stem, any audio
    extension on either side). Raises MixingError naming the folder when there is no such pair, or the file
    whose partner is missing."""
    from mixing.audio.io import load_audio

    raw_dir, processed_dir = folder / "raw", folder / "processed"
    if not raw_dir.is_dir() or not processed_dir.is_dir():
        raise MixingError(f"{folder}: expected sub-folders raw/ and processed/ holding files with the same names")
    processed = {path.stem: path for path in processed_dir.iterdir() if is_audio_filename(path.name)}
    pairs = []
    for raw_path in sorted(path for path in raw_dir.iterdir() if is_audio_filename(path.name)):
        if raw_path.stem not in processed:
            raise MixingError(f"{raw_path}: no processed file named {raw_path.stem}.* in {processed_dir}")
        pair = loudest_clip_pair(load_audio(raw_path).numpy(), load_audio(processed[raw_path.stem]).numpy(),
                                 sample_rate, f"user {raw_path.name}", str(raw_path))
        if pair is not None:
            pairs.append(pair)
    if not pairs:
        raise MixingError(f"{folder}: no non-silent raw/processed pair found")
    return pairs
