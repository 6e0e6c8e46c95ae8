"""Limits on stems and the checks that enforce them.

Every check raises :class:`~mixing.errors.StemError` (or
:class:`~mixing.errors.SessionError` for the whole set) with a reason a user
can act on. Header checks run before any decoding, so a file whose header
claims hours of audio is refused without allocating memory for it.

No torch here: these checks run inside the short-lived decode worker, which
must start quickly.
"""
from __future__ import annotations

import math

import numpy as np

from mixing.errors import SessionError, StemError

MAX_DURATION_S = 12 * 60.0
MIN_DURATION_S = 1.0
MIN_SAMPLE_RATE_HZ = 8000
MAX_SAMPLE_RATE_HZ = 384000
MAX_CHANNELS = 2
MAX_TRACKS = 64
# A 16-bit file holding nothing but +-1 LSB of noise peaks at -90.3 dBFS: call that silent.
SILENCE_PEAK_DBFS = -90.0


def _format_duration(duration_s: float) -> str:
    if duration_s >= 120:
        return f"{duration_s / 60:.1f} min"
    return f"{duration_s:.2f} s" if duration_s < 10 else f"{duration_s:.0f} s"


def check_header(name: str, *, sample_rate_hz: float, channels: int, frames: int | None,
                 max_duration_s: float = MAX_DURATION_S) -> None:
    """Refuse a file from what its header (or ffprobe) says, before decoding it.

    ``frames`` is None when the container does not state its length; the
    decoder then caps what it reads and the length is checked afterwards.
    """
    if not MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
        # ".0f", not "g": a 10 MHz rate reads "10000000 Hz", not "1e+07 Hz".
        raise StemError(name, f"its sample rate of {sample_rate_hz:.0f} Hz is outside the supported range "
                              f"({MIN_SAMPLE_RATE_HZ} to {MAX_SAMPLE_RATE_HZ} Hz).")
    if channels < 1 or channels > MAX_CHANNELS:
        raise StemError(name, f"it has {channels} channels; only mono and stereo stems are supported.")
    if frames is None:
        return
    if frames <= 0:
        raise StemError(name, "it contains no audio (zero frames).")
    check_duration(name, frames / sample_rate_hz, max_duration_s=max_duration_s)


def check_duration(name: str, duration_s: float, *, max_duration_s: float = MAX_DURATION_S) -> None:
    """Refuse stems shorter than :data:`MIN_DURATION_S` or longer than ``max_duration_s``."""
    if duration_s > max_duration_s:
        raise StemError(name, f"it is {_format_duration(duration_s)} long; "
                              f"the maximum is {_format_duration(max_duration_s)}.")
    if duration_s < MIN_DURATION_S:
        raise StemError(name, f"it is only {_format_duration(duration_s)} long; "
                              f"the minimum is {MIN_DURATION_S:g} s.")


def peak_dbfs(audio: np.ndarray) -> float:
    """Sample peak of ``audio`` (any shape) in dBFS; ``-inf`` for digital silence."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def check_samples(name: str, audio: np.ndarray) -> float:
    """Refuse decoded audio holding no frames or NaN/inf; returns its peak in dBFS (``-inf`` for digital silence).

    ``audio``: float array of any layout (``(channels, samples)`` or ``(samples, channels)``). A silent
    stem passes (see :func:`is_silent`): it is kept and left out of the mix; a reference must be audible
    (:func:`check_audible`).
    """
    if audio.size == 0:
        raise StemError(name, "it contains no audio (zero frames).")
    if not np.isfinite(audio).all():
        raise StemError(name, "it contains invalid samples (NaN or infinity).")
    return peak_dbfs(audio)


def is_silent(level_dbfs: float) -> bool:
    """Whether a peak of ``level_dbfs`` is silence (below :data:`SILENCE_PEAK_DBFS`)."""
    return level_dbfs < SILENCE_PEAK_DBFS


def check_audible(name: str, audio: np.ndarray) -> None:
    """Refuse ``audio`` (any shape) that :func:`is_silent`: a reference has to be heard to be matched."""
    if is_silent(peak_dbfs(audio)):
        raise StemError(name, f"it is silent (peak below {SILENCE_PEAK_DBFS:g} dBFS).")


def check_track_count(count: int, *, max_tracks: int = MAX_TRACKS) -> None:
    """Refuse a session with no stems or with more than ``max_tracks``."""
    if count == 0:
        raise SessionError("No stems were given.")
    if count > max_tracks:
        raise SessionError(f"{count} stems were given; the maximum is {max_tracks} tracks.")
