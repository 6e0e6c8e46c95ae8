"""Balance from a reference that is the stems' own mix, time-aligned with them (a rough mix, a demo, a bounce).

Long-term spectra cannot tell apart two tracks of overlapping spectrum (:mod:`mixing.balance`), but a
reference that plays the same stems at the same moments can: over time, each track's contribution
rises and falls on its own. Such a reference is found by cross-correlating it with the stems' sum at a
low rate (:func:`find_alignment`); the mix is then, per STFT bin ``f`` and frame ``t``,

    R_c(f, t) = m(f) sum_i g_i,c T_i,c(f, t)

with ``g_i,c`` track ``i``'s amplitude gain into channel ``c`` (its fader and pan) and ``m(f)`` the
master EQ, complex and smooth. Within a 1/6-octave band ``m`` (and any EQ of the track's own) is about
constant, so least squares over the band's bins and frames gives ``a_i,b,c``, the track's gain into the
channel in that band. Its gain over the whole spectrum is the RMS of ``|a_i,b,c|`` over the bands, each
weighted by the track's energy there: its part of the reference holds that much more power than the track
(:func:`aligned_gains`). No curve shared by all tracks is divided out: what a shared curve and each track's
own EQ contributed cannot be told apart band by band (with tracks equalised one by one, a curve fitted across
them takes the loudest track's EQ in each band for the master's), and the master stage matches whatever
spectrum the tracks leave.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mixing.balance import band_matrix

# The correlation's rate: low enough to be cheap over a whole song, high enough to place it within a sample or so
# after refining at the full rate.
CORRELATION_RATE_HZ = 2000
MAX_OFFSET_S = 5.0
# Normalised correlation at the best lag above which the reference counts as the stems' own mix: unrelated
# music stays near 0 and the stems summed with other gains, pans and a mild EQ well above.
ALIGNED_THRESHOLD = 0.5
N_FFT = 2048
# The least squares read at most this many frames, in blocks spread over the song: plenty of rows for a few
# dozen unknowns per band, and a bounded cost on a long song.
_BLOCK_FRAMES = 128
_MAX_BLOCKS = 12


@dataclass
class Alignment:
    """``offset_samples``: the reference's sample ``n + offset_samples`` plays the stems' sample ``n``;
    ``peak``: the normalised correlation there, in [0, 1]."""

    offset_samples: int
    peak: float

    @property
    def aligned(self) -> bool:
        return self.peak >= ALIGNED_THRESHOLD


def find_alignment(stem_sum: torch.Tensor, reference: torch.Tensor, sample_rate: int, *,
                   max_offset_s: float = MAX_OFFSET_S) -> Alignment:
    """The lag, within ``max_offset_s``, at which ``reference`` (channels, samples) best matches ``stem_sum``
    (channels, samples), the two of any lengths; correlation normalised by the energies that overlap."""
    factor = max(1, sample_rate // CORRELATION_RATE_HZ)
    a, b = _low_rate(stem_sum, factor), _low_rate(reference, factor)
    max_lag = min(round(max_offset_s * sample_rate / factor), len(b) - 1)
    min_lag = -min(round(max_offset_s * sample_rate / factor), len(a) - 1)
    size = 1 << math.ceil(math.log2(len(a) + len(b)))
    # correlation[lag] = sum_n a[n] b[n + lag]
    spectrum = torch.fft.rfft(b, size) * torch.fft.rfft(a, size).conj()
    correlation = torch.fft.irfft(spectrum, size)
    lags = torch.arange(min_lag, max_lag + 1)
    values = correlation[lags % size]
    peak_lag, peak = _best(values, lags, a, b)
    # Refine at the full rate around the low-rate lag, as the mono sums' dot product.
    full_a, full_b = stem_sum.double().mean(dim=0), reference.double().mean(dim=0)
    candidates = range(peak_lag * factor - factor, peak_lag * factor + factor + 1)
    offset = max(candidates, key=lambda lag: float(torch.dot(*_overlap(full_a, full_b, lag))))
    return Alignment(offset, peak)


def _low_rate(audio: torch.Tensor, factor: int) -> torch.Tensor:
    """Mono ``audio`` averaged over blocks of ``factor`` samples (a crude low-pass, enough for a correlation)."""
    mono = audio.double().mean(dim=0)
    usable = mono.shape[-1] // factor * factor
    return mono[:usable].reshape(-1, factor).mean(dim=1)


def _best(values: torch.Tensor, lags: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[int, float]:
    """The lag of the highest normalised correlation, and that value; each lag normalised by the energies of the
    samples that overlap there."""
    energy_a = torch.cat([torch.zeros(1, dtype=a.dtype), torch.cumsum(a * a, 0)])
    energy_b = torch.cat([torch.zeros(1, dtype=b.dtype), torch.cumsum(b * b, 0)])
    start_a = (-lags).clamp_min(0)
    stop_a = torch.minimum(torch.full_like(lags, len(a)), len(b) - lags)
    overlap_a = energy_a[stop_a] - energy_a[start_a]
    overlap_b = energy_b[stop_a + lags] - energy_b[start_a + lags]
    normalised = values / (overlap_a * overlap_b).clamp_min(1e-30).sqrt()
    # Lags that overlap by under a second of low-rate samples could peak by chance.
    normalised = torch.where(stop_a - start_a >= CORRELATION_RATE_HZ, normalised, torch.zeros_like(normalised))
    index = int(torch.argmax(normalised))
    return int(lags[index]), float(normalised[index].clamp(0.0, 1.0))


def _overlap(stems: torch.Tensor, reference: torch.Tensor, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The parts of ``stems`` and ``reference`` (last dimension: samples) that play together at ``offset``."""
    start = max(0, -offset)
    stop = min(stems.shape[-1], reference.shape[-1] - offset)
    return stems[..., start:stop], reference[..., start + offset:stop + offset]


def _covering_bands(sample_rate: int) -> torch.Tensor:
    """(bands, bins) 0/1: :func:`mixing.balance.band_matrix`'s bands at N_FFT, and the bins below and above them as
    two more, so that every bin's power counts toward a track's level."""
    matrix = band_matrix(sample_rate, N_FFT)
    covered = matrix.sum(dim=0) > 0
    first = int(torch.nonzero(covered)[0])
    outside = [(~covered) & (torch.arange(len(covered)) < first), (~covered) & (torch.arange(len(covered)) > first)]
    return torch.cat([matrix, *(rows.double()[None] for rows in outside if rows.any())])


def aligned_gains(tracks: Sequence[torch.Tensor], reference: torch.Tensor, sample_rate: int,
                  offset_samples: int) -> torch.Tensor:
    """Each track's amplitude gain into the reference's left and right channels, (tracks, 2): the RMS over its
    spectrum of its per-band gains, weighted by its energy, so that a track of power ``P_c`` in channel ``c``
    holds ``gain_c^2 P_c`` in the reference, whatever EQ it went through there.

    Args:
        tracks: each (channels 1 or 2, samples), all the same length; a mono track feeds both channels.
        reference: (2, samples), playing the tracks' sample ``n`` at ``n + offset_samples``.
    """
    bands = _covering_bands(sample_rate).to(torch.complex128)  # (bands, bins)
    count = len(tracks)
    gram = torch.zeros(2, bands.shape[0], count, count, dtype=torch.complex128)
    cross = torch.zeros(2, bands.shape[0], count, dtype=torch.complex128)
    start_track, stop_track = max(0, -offset_samples), min(tracks[0].shape[-1], reference.shape[-1] - offset_samples)
    length = stop_track - start_track
    block = N_FFT * _BLOCK_FRAMES
    blocks = min(max(1, length // block), _MAX_BLOCKS)
    starts = sorted({round(k * max(0, length - block) / max(1, blocks - 1)) for k in range(blocks)})
    window = torch.hann_window(N_FFT, dtype=torch.float32)

    def spectra(audio: torch.Tensor) -> torch.Tensor:
        return torch.stft(audio.float().reshape(-1, audio.shape[-1]), N_FFT, hop_length=N_FFT, window=window,
                          center=False, return_complex=True)

    for start in starts:
        # Frames side by side without overlap: every row of the least squares holds new samples. Only each
        # block of the tracks is copied, never a whole long session.
        begin, end = start_track + start, start_track + min(start + block, length)
        chunk = torch.stack([track[:, begin:end].expand(2, -1) for track in tracks])
        ref_chunk = reference[:, begin + offset_samples:end + offset_samples]
        track_stft = spectra(chunk).reshape(count, 2, N_FFT // 2 + 1, -1)  # (tracks, 2, bins, frames)
        ref_stft = spectra(ref_chunk)  # (2, bins, frames)
        gram_bins = torch.einsum("icft,jcft->cfij", track_stft.conj(), track_stft).to(torch.complex128)
        cross_bins = torch.einsum("icft,cft->cfi", track_stft.conj(), ref_stft).to(torch.complex128)
        gram += torch.einsum("bf,cfij->cbij", bands, gram_bins)
        cross += torch.einsum("bf,cfi->cbi", bands, cross_bins)
    energy = torch.diagonal(gram, dim1=-2, dim2=-1).real  # (2, bands, tracks)
    # A small ridge keeps a band solvable where a track holds nothing (its gain there comes out ~0, unweighted).
    ridge = 1e-9 * energy.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    solved = torch.linalg.solve(gram + torch.diag_embed(ridge.expand_as(energy)).to(gram.dtype), cross[..., None])
    band_power_gain = solved[..., 0].abs().square()  # (2, bands, tracks)
    power_gain = (energy * band_power_gain).sum(dim=1) / energy.sum(dim=1).clamp_min(1e-30)  # (2, tracks)
    return power_gain.sqrt().T.float()
