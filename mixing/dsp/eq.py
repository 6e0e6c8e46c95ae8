"""Six-band parametric EQ: low shelf, four peaking bands, high shelf (the bands of ``mixing.params.EQ_BANDS``).

Each band is an RBJ-cookbook biquad (R. Bristow-Johnson, "Cookbook formulae for
audio EQ biquad filter coefficients"), designed by ``dasp_pytorch.signal.biquad``.
Two ways of applying the same coefficients:

- ``parametric_eq``: frequency domain, differentiable, any device. Unlike dasp,
  which takes each band's response from an FFT of its zero-padded coefficients,
  the response is evaluated analytically on a log-frequency grid and
  interpolated to the rfft bins, and the signal is
  zero-padded by the filters' ring-out (``tail_samples``) so that the IIR tail
  does not wrap around onto the start.
- ``parametric_eq_iir``: exact recursive filtering (cascaded biquads in
  transposed direct form II, float64 state, float32 audio in and out), CPU
  only and not differentiable; the full-length renders use it because it is
  faster than an FFT of a whole song and needs no padding.

Parameters are passed as a mapping with the schema's names
(``{prefix}eq_{band}_{freq_hz,gain_db,q}``), each a tensor of shape (batch,).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import numba
import numpy as np
import scipy.fft
import torch
from dasp_pytorch.signal import biquad

from mixing.dsp.biquad import biquad_step, section_coefficients
from mixing.params import EQ_BANDS, EQ_GAIN_RANGE_DB, PEAK_Q_RANGE, SHELF_Q_RANGE

# Guards against the NaN responses listed in shared/DSP.md (Q = 0, cutoff 0 Hz
# or at Nyquist); the schema's ranges already lie inside them.
MIN_Q = 0.05
MIN_FREQ_HZ = 10.0
NYQUIST_MARGIN_HZ = 1000.0
# The padding lets the slowest band ring out to -60 dB before the circular
# convolution wraps; what remains is far below the float32 noise of the mix.
TAIL_DECAY = 1e-3
MIN_TAIL_SAMPLES = 16


def eq_param_names(prefix: str = "") -> list[str]:
    """The 18 schema names of one EQ, in band order: freq_hz, gain_db, q per band."""
    return [f"{prefix}eq_{key}_{suffix}" for key, *_ in EQ_BANDS for suffix in ("freq_hz", "gain_db", "q")]


def band_coefficients(
    params: Mapping[str, torch.Tensor], sample_rate: int, prefix: str = ""
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per band, numerator ``b`` and denominator ``a`` (``a[:, 0] == 1``), each of shape (batch, 3), float64.

    Float64 because poles of low, narrow bands sit within 1e-4 of z = 1, where
    float32 coefficients misplace them audibly.
    """
    coefficients = []
    for key, _, kind, *_ in EQ_BANDS:
        freq_hz, gain_db, q = torch.broadcast_tensors(
            *(
                torch.as_tensor(params[f"{prefix}eq_{key}_{suffix}"], dtype=torch.float64).reshape(-1)
                for suffix in ("freq_hz", "gain_db", "q")
            )
        )
        freq_hz = freq_hz.clamp(MIN_FREQ_HZ, sample_rate / 2 - NYQUIST_MARGIN_HZ)
        coefficients.append(biquad(gain_db, freq_hz, q.clamp_min(MIN_Q), sample_rate, kind))
    return coefficients


def tail_samples(denominators: list[torch.Tensor]) -> int:
    """Samples for the slowest pole among ``denominators`` (each (batch, 3)) to decay by ``TAIL_DECAY``."""
    radius = 0.0
    for a in denominators:
        for row in a.detach().cpu().double().numpy():
            radius = max(radius, float(np.abs(np.roots(row)).max()))
    if radius <= 0.0:
        return MIN_TAIL_SAMPLES
    return max(MIN_TAIL_SAMPLES, math.ceil(math.log(TAIL_DECAY) / math.log(radius)))


@functools.lru_cache(maxsize=8)
def schema_tail_samples(sample_rate: int) -> int:
    """The longest ring-out any EQ setting within the schema's ranges can have."""
    grid = {}
    gains_db = torch.linspace(-EQ_GAIN_RANGE_DB, EQ_GAIN_RANGE_DB, 13, dtype=torch.float64)
    for key, _, kind, freq_min_hz, _, _ in EQ_BANDS:
        q_min, q_max, _ = PEAK_Q_RANGE if kind == "peaking" else SHELF_Q_RANGE
        qs = torch.tensor([q_min, q_max], dtype=torch.float64)
        # Ring-out is longest at the lowest frequency and at an extreme Q.
        gain_grid, q_grid = torch.meshgrid(gains_db, qs, indexing="ij")
        grid[f"eq_{key}_freq_hz"] = torch.full_like(gain_grid.reshape(-1), freq_min_hz)
        grid[f"eq_{key}_gain_db"] = gain_grid.reshape(-1)
        grid[f"eq_{key}_q"] = q_grid.reshape(-1)
    return tail_samples([a for _, a in band_coefficients(grid, sample_rate)])


# From this length on, a power of two is taken up to this many times the smallest fast length: beyond that
# ratio its extra length costs more than its speed saves, and below that length (excerpts) it saves nothing.
_POWER_OF_TWO_MIN_LENGTH = 2**20
_POWER_OF_TWO_MAX_RATIO = 1.5


def fft_size(samples: int, tail: int) -> int:
    """An rfft length >= ``samples + tail`` that torch's FFTs handle fast.

    For whole songs, the next power of two unless it is over ``_POWER_OF_TWO_MAX_RATIO`` times the next
    length with no prime factor above 5; otherwise that length. On this CPU, at these sizes, a power of two
    transforms 2-2.5 times faster per sample than lengths with factors 3 or 5 (irfft of two channels: 0.11 s
    at 2^23 against 0.26 s at 7962624 = 2^15 * 3^5, a three-minute song's fast length); at 1.9 times the
    length it is about as fast. Excerpts (under ``_POWER_OF_TWO_MIN_LENGTH``) fit in the caches, where
    every fast length runs alike per sample, so the shorter one wins.
    """
    smooth = scipy.fft.next_fast_len(samples + tail, real=True)
    power_of_two = 1 << (samples + tail - 1).bit_length()
    if smooth >= _POWER_OF_TWO_MIN_LENGTH and power_of_two <= _POWER_OF_TWO_MAX_RATIO * smooth:
        return power_of_two
    return smooth


# The response is evaluated on a log-spaced grid and interpolated to the rfft
# bins: evaluating twelve polynomials at every bin of a long FFT (and back-
# propagating through them) cost more than all the rest of a fitting step.
# Neighbouring grid points are 0.28 % apart, so even the narrowest band the
# schema allows (Q 8: 12 % bandwidth) spans ~40 points. The grid reaches down
# to 0.2 Hz because the phase of low shelves still turns there; starting at
# 2 Hz cost 25 dB of accuracy (-48 instead of -74 dB against exact IIR at
# extreme settings).
GRID_POINTS = 4096
GRID_MIN_W = 2 * math.pi * 5e-6


@functools.lru_cache(maxsize=1)
def _grid_basis() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The grid's angular frequencies (points,) and the real and imaginary parts of (1, u, u^2) there, each (3, points).

    u = e^{-jw} - 1, written as -2 sin^2(w/2) - j sin(w) so that it stays accurate near w = 0.
    """
    w = torch.cat([
        torch.zeros(1, dtype=torch.float64),
        torch.logspace(math.log10(GRID_MIN_W), math.log10(math.pi), GRID_POINTS - 1, dtype=torch.float64),
    ])
    u = torch.complex(-2 * torch.sin(w / 2) ** 2, -torch.sin(w))
    basis = torch.stack([torch.ones_like(u), u, u * u])
    return w, basis.real.contiguous(), basis.imag.contiguous()


@functools.lru_cache(maxsize=8)
def _bin_interpolation(n_fft: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """For each rfft bin: the grid point below it (bins,) and its weight toward the next point (bins,)."""
    grid, _, _ = _grid_basis()
    w = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (2 * math.pi / n_fft)
    below = (torch.searchsorted(grid, w, right=True) - 1).clamp(0, len(grid) - 2)
    weight = ((w - grid[below]) / (grid[below + 1] - grid[below])).clamp(0.0, 1.0)
    return below.to(device), weight.to(device)


def eq_response(
    params: Mapping[str, torch.Tensor],
    sample_rate: int,
    n_fft: int,
    prefix: str = "",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Complex response of the 6-band EQ at the bins of an ``n_fft``-point rfft, shape (batch, bins).

    Evaluates H(e^jw) = prod B(e^jw) / A(e^jw) on a log-spaced grid and
    interpolates it to the bins; differentiable w.r.t. the parameters.
    """
    coefficients = band_coefficients(params, sample_rate, prefix)
    # All 12 polynomials c0 + c1 z + c2 z^2, rewritten around z = 1 as
    # (c0 + c1 + c2) + (c1 + 2 c2) u + c2 u^2: the sums are formed in float64
    # before rounding, so bands near DC keep their accuracy. Then evaluating
    # them on the grid is one matrix product.
    polynomials = torch.stack([b for b, _ in coefficients] + [a for _, a in coefficients], dim=1)  # (batch, 12, 3)
    c0, c1, c2 = polynomials.unbind(-1)
    taylor = torch.stack([c0 + c1 + c2, c1 + 2 * c2, c2], dim=-1)
    _, basis_real, basis_imag = _grid_basis()
    values = torch.complex(taylor @ basis_real, taylor @ basis_imag)  # (batch, 12, points), complex128
    bands = len(coefficients)
    on_grid = values[:, :bands].prod(dim=1) / values[:, bands:].prod(dim=1)  # (batch, points)
    on_grid = on_grid.to(device=device, dtype=dtype)
    below, weight = _bin_interpolation(n_fft, torch.device(device))
    weight = weight.to(on_grid.real.dtype)
    return on_grid[:, below] * (1 - weight) + on_grid[:, below + 1] * weight


def apply_response(spectrum: torch.Tensor, response: torch.Tensor, n_fft: int, samples: int) -> torch.Tensor:
    """Filter an rfft ``spectrum`` (..., channels, bins) by ``response`` (..., bins).

    Returns (..., channels, samples): the first ``samples`` of the ``n_fft``-point inverse.
    """
    return torch.fft.irfft(spectrum * response.unsqueeze(-2), n_fft)[..., :samples]


def _check_signal(x: torch.Tensor) -> None:
    if x.dim() != 3:
        raise ValueError(f"x: expected shape (batch, channels, samples), got {tuple(x.shape)}")


def parametric_eq(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], prefix: str = ""
) -> torch.Tensor:
    """Equalize ``x`` of shape (batch, channels, samples) in the frequency domain; returns the same shape.

    ``params`` holds the 18 EQ parameters (names from ``eq_param_names(prefix)``),
    each of shape (batch,). Differentiable w.r.t. ``x`` and the parameters.
    """
    _check_signal(x)
    samples = x.shape[-1]
    tail = tail_samples([a for _, a in band_coefficients(params, sample_rate, prefix)])
    n_fft = fft_size(samples, tail)
    complex_dtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    response = eq_response(params, sample_rate, n_fft, prefix, x.device, complex_dtype)
    return apply_response(torch.fft.rfft(x, n_fft), response, n_fft, samples)


# Samples filtered through one section before the next: a block's float64 values stay in the cache while every
# section runs over them, and each section's state stays in registers within the block.
_CASCADE_BLOCK_SAMPLES = 4096
# A section's state under this (-600 dB) is set to 0 between blocks: after a stem falls silent its state would
# otherwise decay through the subnormal numbers, each operation on which costs about a hundred normal ones (a stem
# that is silent half the time filtered 10 times slower). The change to any output sample is under 1e-30.
_STATE_FLUSH = 1e-30


@numba.njit(parallel=True, nogil=True, cache=True)
def _biquad_cascade(signal, sos):
    # signal (rows, samples) float32; sos (rows, sections, 6) float64 with a0 = 1.
    # The state and the values between sections stay in float64: low, narrow bands have poles within 1e-4 of
    # z = 1, where float32 state leaves only ~40 dB signal-to-noise. The recursion of scipy.signal.sosfilt,
    # without its float64 copies of the audio, block by block and section after section (the same arithmetic as
    # sample after sample). A section whose b equals its a (a band at 0 dB) passes its input through exactly and
    # is skipped, as is a section at rest (state 0) over a block of digital silence.
    rows, samples = signal.shape
    sections = sos.shape[1]
    out = np.empty_like(signal)
    for row in numba.prange(rows):
        coefficients = sos[row]
        state1 = np.zeros(sections)
        state2 = np.zeros(sections)
        passes = np.empty(sections, np.bool_)
        for section in range(sections):
            passes[section] = (coefficients[section, 0] == 1.0 and coefficients[section, 1] == coefficients[section, 4]
                               and coefficients[section, 2] == coefficients[section, 5])
        block = np.empty(_CASCADE_BLOCK_SAMPLES)
        for start in range(0, samples, _CASCADE_BLOCK_SAMPLES):
            length = min(_CASCADE_BLOCK_SAMPLES, samples - start)
            silent = True
            for i in range(length):
                block[i] = np.float64(signal[row, start + i])
                silent = silent and block[i] == 0.0
            for section in range(sections):
                first, second = state1[section], state2[section]
                if passes[section] or (silent and first == 0.0 and second == 0.0):
                    continue
                section_sos = section_coefficients(coefficients, section)
                for i in range(length):
                    block[i], first, second = biquad_step(block[i], section_sos, first, second)
                state1[section] = first if abs(first) >= _STATE_FLUSH else 0.0
                state2[section] = second if abs(second) >= _STATE_FLUSH else 0.0
                silent = False
            for i in range(length):
                out[row, start + i] = block[i]
    return out


def parametric_eq_iir(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], prefix: str = ""
) -> torch.Tensor:
    """Equalize ``x`` of shape (batch, channels, samples) by exact IIR filtering; returns float32 on x's device.

    Same coefficients and arguments as ``parametric_eq``; CPU computation, no gradients.
    """
    _check_signal(x)
    batch, channels, samples = x.shape
    coefficients = band_coefficients(params, sample_rate, prefix)
    sos = (
        torch.stack([torch.cat([b, a], dim=-1) for b, a in coefficients], dim=1).detach().expand(batch, -1, -1)
    )  # (batch, sections, 6)
    signal = x.detach().to("cpu", torch.float32).reshape(batch * channels, samples).contiguous().numpy()
    rows_sos = np.ascontiguousarray(sos.repeat_interleave(channels, dim=0).numpy())
    return torch.from_numpy(_biquad_cascade(signal, rows_sos)).reshape(batch, channels, samples).to(x.device)
