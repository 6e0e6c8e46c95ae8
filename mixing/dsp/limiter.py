"""The master output stage: loudness, true peak and the true-peak ceiling.

- ``true_peak_dbtp``: ITU-R BS.1770-4 Annex 2 style true peak, the peak of
  the signal interpolated by a polyphase windowed-sinc filter (4x at 44.1 and
  48 kHz, 2x at 88.2 and 96 kHz, none from 176.4 kHz, so that the
  interpolated rate is near 192 kHz).
- ``ceiling``: a look-ahead brickwall limiter on that interpolated peak,
  then a safety gain, so that ``true_peak_dbtp(out) <= ceiling_dbtp`` always.
- ``loudness_gain_db``: a differentiable, ungated loudness estimate for the
  fitting path.

Only the stretches whose sample peaks come near the level of interest are
interpolated: between two samples the interpolated signal cannot exceed the
largest nearby sample magnitude times the largest absolute tap sum of the
filter's phases, so blocks below that bound are skipped exactly.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
import scipy.signal
import torch

from mixing.features import power_spectrum
from mixing.loudness import k_weighting_sos

# Taps per side of each interpolation phase (BS.1770-4's example filter has 6):
# 8 agrees with scipy.signal.resample_poly's longer default filter within 0.01 dB on noise.
_HALF_TAPS = 8
_BLOCK_SAMPLES = 512
LOOKAHEAD_MS = 2.0
RELEASE_MS = 60.0
# The limiter aims this far below the ceiling so that the safety gain, which
# turns the whole signal down, is rarely needed.
_LIMITER_HEADROOM_DB = 0.05
# Keeps float rounding of the safety gain from landing a hair above the ceiling.
_SAFETY_MARGIN_DB = 0.001


def oversampling_factor(sample_rate: int) -> int:
    """How many times true-peak measurement interpolates: up to an interpolated rate near 192 kHz."""
    return max(1, round(192000 / sample_rate))


@lru_cache(maxsize=8)
def _phase_taps(factor: int) -> tuple[np.ndarray, float]:
    """Taps (factor - 1, 2 * _HALF_TAPS) of the fractional phases and the largest absolute tap sum."""
    length = 2 * factor * _HALF_TAPS + 1
    prototype = scipy.signal.firwin(length, 1.0 / factor, window=("kaiser", 5.0)) * factor
    # Phase p interpolates at n + p / factor from x[n + _HALF_TAPS - k], k = 0 .. 2 * _HALF_TAPS - 1.
    taps = np.zeros((factor - 1, 2 * _HALF_TAPS))
    for p in range(1, factor):
        taps[p - 1] = prototype[p : p + factor * 2 * _HALF_TAPS : factor]
    bound = float(np.abs(taps).sum(axis=1).max()) if factor > 1 else 1.0
    return taps, max(bound, 1.0)


@numba.njit(parallel=True, nogil=True, cache=True)
def _peak_envelope(padded, taps, bound, level, block):
    """Per sample: the largest magnitude over channels of x[n] and of the interpolated points after it.

    ``padded`` is x (channels, samples) with ``taps.shape[1] // 2`` zeros on
    each side. Blocks that the tap bound keeps at or below ``level`` get the
    sample magnitude only.
    """
    phases, width = taps.shape
    half = width // 2
    channels, samples = padded.shape[0], padded.shape[1] - 2 * half
    envelope = np.empty(samples, np.float64)
    for block_index in numba.prange((samples + block - 1) // block):
        start = block_index * block
        stop = min(start + block, samples)
        nearby = 0.0
        for c in range(channels):
            for n in range(start, stop + 2 * half):
                nearby = max(nearby, abs(padded[c, n]))
        for n in range(start, stop):
            peak = 0.0
            for c in range(channels):
                peak = max(peak, abs(padded[c, n + half]))
            envelope[n] = peak
        if phases == 0 or nearby * bound <= level:
            continue
        # Tap-outer loops so that the inner loop is a vectorizable multiply-add over the block.
        interpolated = np.empty(stop - start, padded.dtype)
        for c in range(channels):
            for p in range(phases):
                interpolated[:] = 0.0
                for k in range(width):
                    tap = taps[p, k]
                    # A one-dimensional slice: two-dimensional indexing here keeps LLVM from vectorizing.
                    source = padded[c, start + width - k : stop + width - k]
                    for i in range(stop - start):
                        interpolated[i] += tap * source[i]
                for i in range(stop - start):
                    envelope[start + i] = max(envelope[start + i], abs(interpolated[i]))
    return envelope


def _as_channels_array(x) -> np.ndarray:
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"expected audio of shape (channels, samples), got {tuple(array.shape)}")
    return np.ascontiguousarray(array, dtype=np.float32 if array.dtype == np.float32 else np.float64)


def _envelope(array: np.ndarray, sample_rate: int, level: float) -> np.ndarray:
    taps, bound = _phase_taps(oversampling_factor(sample_rate))
    padded = np.pad(array, ((0, 0), (_HALF_TAPS, _HALF_TAPS)))
    return _peak_envelope(padded, taps.astype(array.dtype), bound, level, _BLOCK_SAMPLES)


def true_peak_dbtp(x, sample_rate: int) -> float:
    """True peak in dBTP of ``x`` (channels, samples), tensor or array; ``-inf`` for digital silence."""
    array = _as_channels_array(x)
    sample_peak = float(np.abs(array).max())
    if sample_peak == 0.0:
        return -math.inf
    return 20.0 * math.log10(float(_envelope(array, sample_rate, sample_peak).max()))


@numba.njit(nogil=True, cache=True)
def _limited(array, envelope, level, window, release_coef):
    """``array`` (channels, samples) times the limiter's gain for its ``envelope`` (samples,) and ``level``.

    The gain keeps ``envelope * gain <= level``, smoothly: the look-ahead minimum of the required gain
    ``min(1, level / envelope)`` over ``window`` samples, held and released, then averaged over ``window``.
    The gain at ``n`` averages the held minima of the windows starting at ``n - window + 1 .. n``, each of
    which contains ``n``, so it is at most the gain ``n`` requires. One kernel for all of it: the numpy steps
    in between made five whole-song temporaries.
    """
    samples = envelope.size
    # The required gain with ``window - 1`` ones before and after, so every sample has full windows around it.
    size = samples + 2 * (window - 1)
    required = np.ones(size)
    for n in range(samples):
        required[n + window - 1] = min(1.0, level / max(envelope[n], 1e-30))
    # Van Herk / Gil-Werman: the minimum over [i, i + window) is min(suffix minimum
    # of i's block from i, prefix minimum of the next block up to i + window - 1).
    prefix = np.empty(size)
    suffix = np.empty(size)
    for start in range(0, size, window):
        stop = min(start + window, size)
        prefix[start] = required[start]
        for i in range(start + 1, stop):
            prefix[i] = min(prefix[i - 1], required[i])
        suffix[stop - 1] = required[stop - 1]
        for i in range(stop - 2, start - 1, -1):
            suffix[i] = min(suffix[i + 1], required[i])
    # The held minima go into ``required``'s memory: it is not read again.
    held = required
    state = 1.0
    for i in range(size - window + 1):
        target = min(suffix[i], prefix[i + window - 1])
        state = target if target < state else state + release_coef * (target - state)
        held[i] = state
    out = np.empty_like(array)
    total = 0.0
    for i in range(window - 1):
        total += held[i]
    for n in range(samples):
        total += held[n + window - 1]
        gain = total / window
        for c in range(array.shape[0]):
            out[c, n] = array[c, n] * gain
        total -= held[n]
    return out


def ceiling(x, sample_rate: int, ceiling_dbtp: float):
    """Limit ``x`` (channels, samples) so that its true peak is at most ``ceiling_dbtp``.

    Look-ahead brickwall limiter on the interpolated peak (``LOOKAHEAD_MS``
    look-ahead, instant attack spread over the look-ahead, ``RELEASE_MS``
    release), aiming ``_LIMITER_HEADROOM_DB`` below the ceiling, then a
    constant safety gain if any true peak is still above it. Input already at
    or below the ceiling is returned unchanged. Returns the input's type
    (tensor on its device, or array) and dtype.
    """
    array = _as_channels_array(x)
    aim = 10.0 ** ((ceiling_dbtp - _LIMITER_HEADROOM_DB) / 20.0)
    # Exact wherever the true peak can exceed ``aim``, so also exact against the ceiling above it.
    envelope = _envelope(array, sample_rate, aim)
    if envelope.max() <= 10.0 ** (ceiling_dbtp / 20.0):
        return x
    window = max(1, round(LOOKAHEAD_MS * sample_rate / 1000))
    limited = _limited(array, envelope, aim, window, 1.0 - math.exp(-1000.0 / (RELEASE_MS * sample_rate)))
    safe_amplitude = 10.0 ** ((ceiling_dbtp - _SAFETY_MARGIN_DB) / 20.0)
    peak = float(_envelope(limited, sample_rate, safe_amplitude).max())
    if peak > safe_amplitude:
        limited *= array.dtype.type(safe_amplitude / peak)
    if isinstance(x, torch.Tensor):
        return torch.from_numpy(limited).to(device=x.device, dtype=x.dtype)
    return limited.astype(np.asarray(x).dtype, copy=False)


def driven_ceiling(x, sample_rate: int, ceiling_dbtp: float, drive_db: float):
    """``ceiling`` on ``x`` (channels, samples) turned up by ``drive_db`` first: with the peaks held at the
    ceiling, each dB of drive takes about a dB off the crest factor of whatever the ceiling limits (a negative
    drive gives it back, the output quieter). Drive 0 is ``ceiling`` itself."""
    if drive_db == 0.0:
        return ceiling(x, sample_rate, ceiling_dbtp)
    return ceiling(x * 10.0 ** (drive_db / 20.0), sample_rate, ceiling_dbtp)


@lru_cache(maxsize=16)
def _k_weighting_power_response(sample_rate: int, samples: int) -> np.ndarray:
    frequencies_hz = np.fft.rfftfreq(samples, 1.0 / sample_rate)
    _, response = scipy.signal.sosfreqz(k_weighting_sos(sample_rate), worN=frequencies_hz, fs=sample_rate)
    return np.abs(response) ** 2


def loudness_gain_db(x: torch.Tensor, sample_rate: int, target_lufs) -> torch.Tensor:
    """Gain in dB (batch,) that brings ``x`` (batch, channels, samples) to ``target_lufs``, differentiably.

    Loudness here is BS.1770's K-weighted mean square with channel weights 1,
    measured over the whole signal without gating, computed in the frequency
    domain (Parseval) from the exact K-weighting response. It matches the
    gated measure on steady material; on material with long quiet passages it
    reads lower than the gated one.
    """
    if x.dim() != 3:
        raise ValueError(f"x: expected shape (batch, channels, samples), got {tuple(x.shape)}")
    samples = x.shape[-1]
    spectrum_power = power_spectrum(torch.fft.rfft(x, dim=-1))
    weights = torch.as_tensor(_k_weighting_power_response(int(sample_rate), samples), dtype=x.dtype, device=x.device)
    # rfft keeps one side of the spectrum: count every bin twice except DC and (even lengths) Nyquist.
    weights = weights * 2.0
    weights[0] /= 2.0
    if samples % 2 == 0:
        weights[-1] /= 2.0
    mean_square = (spectrum_power * weights).sum(dim=-1) / samples**2
    loudness_lufs = -0.691 + 10.0 * torch.log10(mean_square.sum(dim=-1) + 1e-10)
    return torch.as_tensor(target_lufs, dtype=x.dtype, device=x.device) - loudness_lufs
