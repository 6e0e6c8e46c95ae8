"""The master bus's match EQ: a zero-phase graphic EQ on the bark bands of the AF loss, and its multiband width.

Its gains sit at :data:`mixing.params.MATCH_EQ_CENTRES_HZ`, the peaks of the
bark spectrum's triangular bands. Between two centres the response in dB is
interpolated linearly on the bark axis, the axis on which those triangles are
drawn, so a gain moves the bark band it belongs to and half of each
neighbour's; below the first and above the last centre it stays at the end
gains. ``mixing.master_match`` sets the gains from the gap between a mix's
bark spectrum and a reference's, as a mastering engineer's matching EQ would.

The multiband width works on the same bands and the same FFT: after the EQ,
the side signal (L - R) / 2 is scaled by a width response interpolated like
the gains (linearly in the width, on the bark axis), the mid (L + R) / 2 is
left alone. Matching sets it so that the side-to-mid ratio of each band meets
the reference's: left and right spectra can each match while their
difference, the side, does not.

It filters in the frequency domain with a real (zero-phase) response, so it
adds no delay and no phase shift, and every engine (fitting excerpts, whole
songs, CPU or CUDA) runs the same code. The song is padded at its end before
the FFT so that the response's short ringing wraps into the padding, not onto
the music.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from mixing.dsp.eq import fft_size
from mixing.features import hz_to_bark
from mixing.params import MATCH_EQ_CENTRES_HZ

# The response's ringing lasts a few periods of its narrowest feature (the
# ~80 Hz between the two lowest centres): well under 100 ms.
PAD_S = 0.25


@functools.lru_cache(maxsize=4)
def _interpolation(sample_rate: int, n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each rfft bin: the centre below it (bins,) and its weight toward the next centre (bins,)."""
    centres = hz_to_bark(np.asarray(MATCH_EQ_CENTRES_HZ))
    bins = np.clip(hz_to_bark(np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)), centres[0], centres[-1])
    below = np.clip(np.searchsorted(centres, bins, side="right") - 1, 0, len(centres) - 2)
    weight = (bins - centres[below]) / (centres[below + 1] - centres[below])
    return torch.from_numpy(below), torch.from_numpy(weight.astype(np.float32))


def match_eq_response_db(gains_db: torch.Tensor, sample_rate: int, n_fft: int) -> torch.Tensor:
    """The dB response (batch, bins) at the bins of an ``n_fft``-point rfft for ``gains_db`` (batch, bands).

    The interpolation is linear in its input, so it also gives the multiband width's response from widths.
    """
    below, weight = (t.to(gains_db.device) for t in _interpolation(int(sample_rate), int(n_fft)))
    weight = weight.to(gains_db.dtype)
    return gains_db[:, below] * (1 - weight) + gains_db[:, below + 1] * weight


def channel_gains_db(gains_db: torch.Tensor, left_right_db: torch.Tensor) -> torch.Tensor:
    """Each channel's match EQ gains from the gains for both and the left/right gains, both (..., bands):
    (..., 2, bands), the left channel's gain plus half the left/right gain, the right's minus half."""
    half = 0.5 * left_right_db
    return torch.stack([gains_db + half, gains_db - half], dim=-2)


def match_eq_spectrum(x: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The padded rfft of ``x`` (batch, channels, samples) that :func:`match_eq` filters: (batch, channels, bins).

    A caller filtering the same audio with several gains (matching's rounds) computes it once.
    """
    return torch.fft.rfft(x, fft_size(x.shape[-1], int(PAD_S * sample_rate)))


def match_eq(x: torch.Tensor, sample_rate: int, gains_db: torch.Tensor,
             spectrum: torch.Tensor | None = None, band_width_pct: torch.Tensor | None = None) -> torch.Tensor:
    """Filter ``x`` (batch, channels, samples) by the match EQ with ``gains_db``, (batch, bands) for one curve
    on every channel or (batch, channels, bands) for one per channel; same shape out.

    ``band_width_pct`` (batch, bands), stereo ``x`` only: after the EQ, each band's side signal scaled by its
    width / 100 (0 %: that band in mono, 100 %: unchanged, 200 %: its side doubled), the mid unchanged.
    ``spectrum``: ``match_eq_spectrum(x, sample_rate)`` when the caller has it. Differentiable w.r.t. ``x``,
    ``gains_db`` and ``band_width_pct``. All gains at 0 dB and all widths at 100 % return ``x`` itself.
    """
    if x.dim() != 3:
        raise ValueError(f"x: expected shape (batch, channels, samples), got {tuple(x.shape)}")
    gains_db = torch.as_tensor(gains_db, dtype=x.dtype, device=x.device)
    bands = len(MATCH_EQ_CENTRES_HZ)
    if gains_db.shape not in ((x.shape[0], bands), (*x.shape[:2], bands)):
        raise ValueError(f"gains_db: expected shape ({x.shape[0]}, {bands}) or ({x.shape[0]}, {x.shape[1]}, "
                         f"{bands}), got {tuple(gains_db.shape)}")
    widen = band_width_pct is not None
    if widen:
        band_width_pct = torch.as_tensor(band_width_pct, dtype=x.dtype, device=x.device)
        if x.shape[1] != 2 or band_width_pct.shape != (x.shape[0], bands):
            raise ValueError(f"band_width_pct: expected shape ({x.shape[0]}, {bands}) for stereo x, got "
                             f"{tuple(band_width_pct.shape)} for x of shape {tuple(x.shape)}")
        widen = band_width_pct.requires_grad or bool((band_width_pct != 100.0).any())
    if not gains_db.requires_grad and not bool(gains_db.any()) and not widen:
        return x
    samples = x.shape[-1]
    n_fft = fft_size(samples, int(PAD_S * sample_rate))
    response_db = match_eq_response_db(gains_db.reshape(-1, bands), sample_rate, n_fft)
    amplitude = torch.pow(10.0, response_db / 20.0).reshape(*gains_db.shape[:-1], -1)
    if gains_db.dim() == 2:
        amplitude = amplitude.unsqueeze(-2)  # one curve for every channel
    if spectrum is None:
        spectrum = match_eq_spectrum(x, sample_rate)
    filtered = spectrum * amplitude
    if widen:
        width = match_eq_response_db(band_width_pct / 100.0, sample_rate, n_fft)  # (batch, bins)
        mid = 0.5 * (filtered[:, 0] + filtered[:, 1])
        side = 0.5 * (filtered[:, 0] - filtered[:, 1]) * width
        filtered = torch.stack([mid + side, mid - side], dim=1)
    return torch.fft.irfft(filtered, n_fft)[..., :samples]
