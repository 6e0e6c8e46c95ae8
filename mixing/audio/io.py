"""Stems in as torch tensors, mixes out as files.

Audio is float32 ``(channels, samples)`` with 1 (mono) or 2 (stereo) channels
as the file had them. A session's stems come at the session's rate
(:func:`session_rate_hz`); a single file at :data:`mixing.SAMPLE_RATE`
(44100 Hz) unless the caller names a rate.
Decoding happens in a child process unless ``isolate=False`` (for tests, and
for callers that already are a disposable worker); see :mod:`mixing.audio.decode`.
"""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr
import torch

from mixing import SAMPLE_RATE
from mixing.audio.decode import DECODE_TIMEOUT_S, DecodedStem, StemInfo, decode_file, decode_isolated
from mixing.audio.names import dedupe_names, track_name_from_filename
from mixing.audio.validate import (
    MAX_DURATION_S,
    MAX_TRACKS,
    SILENCE_PEAK_DBFS,
    check_track_count,
    is_silent,
    peak_dbfs,
)
from mixing.errors import StemError, StemsRejected

logger = logging.getLogger(__name__)

# Stems differing by less than this are bounces of the same song with different tails; no need to say so.
LENGTH_WARNING_S = 1.0
# The match EQ's bark bands run up to BARK_F_MAX_HZ (20 kHz), so a session needs its Nyquist there.
MIN_SESSION_RATE_HZ = 40000
_SUBTYPES = {"wav": ("PCM_16", "PCM_24", "FLOAT"), "flac": ("PCM_16", "PCM_24")}


@dataclass
class Stems:
    """A session's stems in input order, all at ``sample_rate`` and of one length.

    ``audio[i]``: float32 tensor ``(channels, samples)``, channels 1 or 2.
    ``names``: unique track names. ``warnings``: sentences for the user
    (stems padded with silence to the longest, silent stems). ``peak_dbfs``: each stem's sample peak as decoding
    measured it, or None (then :attr:`silent` measures it).
    """

    names: list[str]
    audio: list[torch.Tensor]
    sample_rate: int
    warnings: list[str]
    peak_dbfs: list[float] | None = None

    @property
    def silent(self) -> list[bool]:
        """Whether each stem is silent (:func:`mixing.audio.validate.is_silent`): kept, and left out of every mix."""
        # Decoding's peaks decide, so that the silence warning and the mix agree; measuring costs a pass over
        # every stem (seconds for a long session).
        peaks = self.peak_dbfs if self.peak_dbfs is not None else [peak_dbfs(audio.numpy()) for audio in self.audio]
        return [is_silent(peak) for peak in peaks]


def _decode(path, *, name, max_duration_s, isolate, timeout_s, keep_audio,
            sample_rate_hz: int | None = SAMPLE_RATE) -> DecodedStem:
    if isolate:
        return decode_isolated(path, name=name, max_duration_s=max_duration_s, timeout_s=timeout_s,
                               keep_audio=keep_audio, sample_rate_hz=sample_rate_hz)
    return decode_file(path, name=name, max_duration_s=max_duration_s, sample_rate_hz=sample_rate_hz)


def session_rate_hz(rates_hz: Sequence[int]) -> int:
    """The rate a session's stems are mixed at: the most common of their own rates (a tie goes to the
    highest), raised to :data:`mixing.SAMPLE_RATE` when below :data:`MIN_SESSION_RATE_HZ`."""
    rates = [int(r) for r in rates_hz]
    rate = max(set(rates), key=lambda r: (rates.count(r), r))
    return rate if rate >= MIN_SESSION_RATE_HZ else SAMPLE_RATE


def resample(audio: torch.Tensor, from_hz: int, to_hz: int) -> torch.Tensor:
    """float32 ``(channels, samples)`` at ``from_hz`` -> at ``to_hz`` (soxr, high quality); the same tensor
    when the rates agree."""
    if from_hz == to_hz:
        return audio
    frames = soxr.resample(audio.detach().cpu().numpy().T, from_hz, to_hz, quality="HQ")
    return torch.from_numpy(np.array(frames.T, dtype=np.float32, order="C"))


def load_audio(path: str | os.PathLike, *, name: str | None = None, max_duration_s: float = MAX_DURATION_S,
               isolate: bool = True, timeout_s: float = DECODE_TIMEOUT_S,
               sample_rate_hz: int = SAMPLE_RATE) -> torch.Tensor:
    """Decode, check and resample one file: float32 ``(channels, samples)`` at ``sample_rate_hz``.

    ``name``: the user's file name, used in errors and to choose the decoder by
    its extension (defaults to the file's own name). Raises StemError.
    """
    decoded = _decode(path, name=name, max_duration_s=max_duration_s, isolate=isolate, timeout_s=timeout_s,
                      keep_audio=True, sample_rate_hz=sample_rate_hz)
    return torch.from_numpy(decoded.audio)


def validate_stem(path: str | os.PathLike, *, name: str | None = None, max_duration_s: float = MAX_DURATION_S,
                  isolate: bool = True, timeout_s: float = DECODE_TIMEOUT_S) -> StemInfo:
    """Run every check of :func:`load_audio` on one file (a full decode) and describe it. Raises StemError."""
    return _decode(path, name=name, max_duration_s=max_duration_s, isolate=isolate, timeout_s=timeout_s,
                   keep_audio=False).info


def load_stems(paths: Sequence[str | os.PathLike], *, filenames: Sequence[str] | None = None,
               names: Sequence[str] | None = None, max_tracks: int = MAX_TRACKS,
               max_duration_s: float = MAX_DURATION_S, isolate: bool = True,
               timeout_s: float = DECODE_TIMEOUT_S, workers: int | None = None) -> Stems:
    """Load a session's stems at the session's rate (:func:`session_rate_hz` of their own rates) and pad them
    to the longest.

    ``filenames``: the users' file names (errors, decoder choice, default
    track names); default the paths' own names. ``names``: track names;
    default cleaned from the file names. Names are made unique either way.
    Files are decoded ``workers`` at a time (default up to 4).

    Raises SessionError when there are no stems or more than ``max_tracks``,
    before decoding anything, and StemsRejected carrying one StemError per bad
    file after checking every file.
    """
    check_track_count(len(paths), max_tracks=max_tracks)
    filenames = list(filenames) if filenames is not None else [Path(p).name for p in paths]
    names = list(names) if names is not None else [track_name_from_filename(f) for f in filenames]
    if not len(filenames) == len(names) == len(paths):
        raise ValueError(f"expected as many filenames ({len(filenames)}) and names ({len(names)}) "
                         f"as paths ({len(paths)})")

    def load_one(index: int) -> DecodedStem | StemError:
        try:
            return _decode(paths[index], name=filenames[index], max_duration_s=max_duration_s, isolate=isolate,
                           timeout_s=timeout_s, keep_audio=True, sample_rate_hz=None)
        except StemError as error:
            return error

    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        results = list(pool.map(load_one, range(len(paths))))
    errors = [r for r in results if isinstance(r, StemError)]
    if errors:
        raise StemsRejected(errors)
    rate_hz = session_rate_hz([r.sample_rate_hz for r in results])
    peaks_dbfs = [result.info.peak_dbfs for result in results]
    audio = []
    for index, result in enumerate(results):
        audio.append(resample(torch.from_numpy(result.audio), result.sample_rate_hz, rate_hz))
        results[index] = None  # the decoded array lives on only in audio (shared at the session's rate)
    warnings = _pad_in_place(audio, filenames, sample_rate=rate_hz)
    warnings += [f"{filename} is silent (peak below {SILENCE_PEAK_DBFS:g} dBFS): it is kept and left out of the mix."
                 for filename, peak in zip(filenames, peaks_dbfs, strict=True) if is_silent(peak)]
    for warning in warnings:
        logger.warning(warning)
    return Stems(names=dedupe_names(names), audio=audio, sample_rate=rate_hz, warnings=warnings, peak_dbfs=peaks_dbfs)


def pad_to_longest(audio: Sequence[torch.Tensor], filenames: Sequence[str], *,
                   sample_rate: int = SAMPLE_RATE) -> tuple[list[torch.Tensor], list[str]]:
    """Zero-pad each ``(channels, samples)`` tensor at its end to the longest.

    Returns the padded tensors and one warning per stem more than
    :data:`LENGTH_WARNING_S` shorter than the longest.
    """
    padded = list(audio)
    return padded, _pad_in_place(padded, filenames, sample_rate=sample_rate)


def _pad_in_place(audio: list[torch.Tensor], filenames: Sequence[str], *, sample_rate: int) -> list[str]:
    """:func:`pad_to_longest` replacing the entries of ``audio`` one by one, so that each original can be freed
    as soon as its padded copy exists (AAC stems of one song often differ by a few milliseconds, so nearly
    every stem is copied: a whole session's worth of memory at once otherwise). Returns the warnings."""
    lengths = [a.shape[-1] for a in audio]
    longest = max(range(len(audio)), key=lengths.__getitem__)
    warnings = []
    for index, (filename, length) in enumerate(zip(filenames, lengths, strict=True)):
        missing_s = (lengths[longest] - length) / sample_rate
        if missing_s > LENGTH_WARNING_S:
            warnings.append(f"{filename} is {missing_s:.1f} s shorter than the longest stem "
                            f"({filenames[longest]}); silence was added at its end.")
        if length < lengths[longest]:
            audio[index] = torch.nn.functional.pad(audio[index], (0, lengths[longest] - length))
    return warnings


def save_audio(path: str | os.PathLike, audio: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE, *,
               format: Literal["wav", "flac"] = "wav", subtype: Literal["PCM_16", "PCM_24", "FLOAT"] = "PCM_24",
               dither: bool = True) -> Path:
    """Write ``audio`` ``(channels, samples)`` to ``path`` atomically (temp file, fsync, rename).

    Integer subtypes are quantized here, by rounding ``x * 2**(bits - 1)`` and
    clipping to the integer range (so to [-1, 1 - 1 LSB]); PCM_16 first gets
    TPDF dither of +-1 LSB unless ``dither=False``. The dither is seeded, so
    one mix always gives the same bytes. FLOAT (WAV only) is written unclipped.
    Raises ValueError on a bad shape, format or subtype, or on NaN/inf.
    """
    if subtype not in _SUBTYPES.get(format, ()):
        raise ValueError(f"cannot write subtype {subtype!r} as {format!r}; choose from {_SUBTYPES}")
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise ValueError(f"expected audio of shape (channels, samples), got {tuple(audio.shape)}")
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    frames = np.asarray(audio, dtype=np.float32).T
    if not np.isfinite(frames).all():
        raise ValueError("audio contains NaN or infinity")
    if subtype != "FLOAT":
        frames = _quantize(frames, bits=16 if subtype == "PCM_16" else 24, dither=dither and subtype == "PCM_16")

    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as file:
            sf.write(file, frames, sample_rate, format=format.upper(), subtype=subtype)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _quantize(frames: np.ndarray, *, bits: int, dither: bool) -> np.ndarray:
    """Float ``(samples, channels)`` -> integers as libsndfile takes them (int16, or 24 bits in the top of int32).

    Done here because libsndfile floors instead of rounding, which turns a
    signal below one step into a square wave and leaves nothing for dither to fix.
    """
    full_scale = np.float32(2 ** (bits - 1))
    scaled = frames * full_scale
    if dither:
        rng = np.random.default_rng(0)
        scaled += rng.random(scaled.shape, np.float32) - rng.random(scaled.shape, np.float32)
    integers = np.clip(np.round(scaled), -full_scale, full_scale - 1).astype(np.int32)
    return integers.astype(np.int16) if bits == 16 else integers << 8
