"""Spectra of a mix for the studio's charts and the analysis' tone readings (numpy out, no gradients).

:func:`spectrogram_data` is a log-frequency spectrogram small enough for a browser heatmap;
:func:`long_term_spectrum` is the long-term average spectrum in 1/3-octave bands. Both average
power over channels, so anti-phase content is not cancelled as it would be in a mono fold-down.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from mixing.features import power_spectrum

_DB_FLOOR = -120.0


def _as_channels(audio) -> torch.Tensor:
    """(samples,) or (channels, samples), tensor or array -> float32 tensor (channels, samples)."""
    tensor = audio.detach().cpu() if isinstance(audio, torch.Tensor) else torch.from_numpy(np.asarray(audio))
    if tensor.ndim == 1:
        tensor = tensor[None]
    if tensor.ndim != 2 or tensor.shape[-1] == 0:
        raise ValueError(f"expected audio of shape (channels, samples) or (samples,), got {tuple(tensor.shape)}")
    return tensor.to(torch.float32)


def _mean_power_spectrogram(audio: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """|STFT|^2 averaged over channels: (channels, samples) -> (bins, frames)."""
    window = torch.hann_window(n_fft)
    power = None
    for channel in audio:  # one channel at a time bounds the complex STFT's memory
        spectrum = torch.stft(
            channel, n_fft=n_fft, hop_length=hop_length, window=window,
            center=True, pad_mode="constant", return_complex=True,
        )
        channel_power = power_spectrum(spectrum)
        power = channel_power if power is None else power + channel_power
    return power / audio.shape[0]


def _log_bin_matrix(sample_rate: int, n_fft: int, n_bins: int, f_min_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows map FFT bins to log-spaced bins: (n_bins, fft_bins), and the log bins' centres in Hz.

    A log bin wider than the FFT spacing averages the FFT bins inside it; a
    narrower one (at low frequencies) interpolates linearly between the two
    FFT bins around its centre.
    """
    fft_freqs_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    f_max_hz = min(20000.0, sample_rate / 2.0)
    centres_hz = np.geomspace(f_min_hz, f_max_hz, n_bins)
    ratio = math.sqrt(centres_hz[1] / centres_hz[0])
    matrix = np.zeros((n_bins, fft_freqs_hz.size))
    bin_spacing_hz = fft_freqs_hz[1]
    for row, centre_hz in enumerate(centres_hz):
        inside = (fft_freqs_hz >= centre_hz / ratio) & (fft_freqs_hz < centre_hz * ratio)
        if inside.any():
            matrix[row, inside] = 1.0 / inside.sum()
        else:
            position = centre_hz / bin_spacing_hz
            below = min(int(position), fft_freqs_hz.size - 2)
            fraction = position - below
            matrix[row, below] = 1.0 - fraction
            matrix[row, below + 1] = fraction
    return matrix.astype(np.float32), centres_hz


def spectrogram_data(
    audio,
    sample_rate: int,
    *,
    max_frames: int = 600,
    n_bins: int = 256,
    n_fft: int = 4096,
    f_min_hz: float = 20.0,
) -> dict[str, np.ndarray]:
    """A log-frequency spectrogram small enough for a browser heatmap.

    audio: (channels, samples) or (samples,), tensor or array.
    Returns ``db`` (bins, frames) float32, ``freqs_hz`` (bins,), ``times_s`` (frames,).
    Levels are dB relative to a full-scale sine (a sine of amplitude A peaks
    near 20 log10 A), floored at -120 dB. Frames of hop n_fft / 2 are averaged
    in groups so that at most ``max_frames`` columns remain; ``times_s`` is
    the centre of each group.
    """
    channels = _as_channels(audio)
    hop_length = n_fft // 2
    with torch.no_grad():
        power = _mean_power_spectrogram(channels, n_fft, hop_length).numpy()
    matrix, freqs_hz = _log_bin_matrix(int(sample_rate), n_fft, n_bins, f_min_hz)
    log_power = matrix @ power  # (bins, frames)

    n_frames = log_power.shape[1]
    group = max(1, math.ceil(n_frames / max_frames))
    starts = np.arange(0, n_frames, group)
    counts = np.diff(np.append(starts, n_frames))
    pooled = np.add.reduceat(log_power, starts, axis=1) / counts
    frame_times_s = np.arange(n_frames) * hop_length / sample_rate
    times_s = np.add.reduceat(frame_times_s, starts) / counts

    # |X| of a sine of amplitude A is A * sum(window) / 2 at its peak bin.
    amplitude_scale = 2.0 / float(torch.hann_window(n_fft).sum())
    db = 10.0 * np.log10(np.maximum(pooled * amplitude_scale**2, 10.0 ** (_DB_FLOOR / 10.0)))
    return {"db": db.astype(np.float32), "freqs_hz": freqs_hz, "times_s": times_s}


def third_octave_centres_hz(sample_rate: int) -> np.ndarray:
    """Base-10 1/3-octave centres (IEC 61260) from 20 Hz to 20 kHz, those below Nyquist: (bands,)."""
    indices = np.arange(-17, 14)  # 1000 Hz * 10^(k/10): 19.95 Hz ... 19.95 kHz
    centres_hz = 1000.0 * 10.0 ** (indices / 10.0)
    return centres_hz[centres_hz < sample_rate / 2.0]


def long_term_spectrum(audio, sample_rate: int, *, n_fft: int = 16384) -> dict[str, np.ndarray]:
    """Long-term average spectrum in 1/3-octave bands.

    audio: (channels, samples) or (samples,), tensor or array.
    Returns ``freqs_hz`` (bands,) band centres and ``db`` (bands,): the mean
    power (mean square, averaged over channels) falling in each band, in dB,
    so a sine of amplitude A reads 20 log10(A) - 3.01 dB in its band and the
    band powers add up to the signal's mean square between 17.8 Hz and
    min(22.4 kHz, Nyquist), the outer band edges.
    Each FFT bin is shared between bands in proportion to the overlap of its
    width with theirs, so low bands narrower than one bin still get a value.
    """
    channels = _as_channels(audio)
    with torch.no_grad():
        power = _mean_power_spectrogram(channels, n_fft, n_fft // 2).mean(dim=-1).double().numpy()
    window = torch.hann_window(n_fft, dtype=torch.float64)
    # Parseval on the windowed frame, one-sided spectrum: mean square = sum c_k |X_k|^2 / (N sum w^2).
    one_sided = np.full(power.size, 2.0)
    one_sided[0] = one_sided[-1] = 1.0
    bin_power = power * one_sided / (n_fft * float(window.pow(2).sum()))

    centres_hz = third_octave_centres_hz(int(sample_rate))
    half_band = 10.0 ** (1.0 / 20.0)
    bin_width_hz = sample_rate / n_fft
    bin_lo_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate) - bin_width_hz / 2.0
    overlap_hz = np.clip(
        np.minimum(bin_lo_hz[None, :] + bin_width_hz, centres_hz[:, None] * half_band)
        - np.maximum(bin_lo_hz[None, :], centres_hz[:, None] / half_band),
        0.0,
        None,
    )
    band_power = overlap_hz / bin_width_hz @ bin_power
    db = 10.0 * np.log10(np.maximum(band_power, 10.0 ** (_DB_FLOOR / 10.0)))
    return {"freqs_hz": centres_hz, "db": db}
