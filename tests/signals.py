"""Test signals made in code: float32 tensors ``(channels, samples)``, and a writer for them.

Random signals take a seed and use their own generator, so they leave the
global random state alone and repeat exactly.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mixing import SAMPLE_RATE


def _times_s(duration_s: float, sample_rate: int) -> torch.Tensor:
    return torch.arange(round(duration_s * sample_rate), dtype=torch.float64) / sample_rate


def sine(freq_hz: float, duration_s: float = 1.0, *, sample_rate: int = SAMPLE_RATE, amplitude: float = 0.5,
         channels: int = 1) -> torch.Tensor:
    """A sine of peak ``amplitude``, the same in every channel: ``(channels, samples)``."""
    wave = amplitude * torch.sin(2 * math.pi * freq_hz * _times_s(duration_s, sample_rate))
    return wave.float().expand(channels, -1).clone()


def noise(duration_s: float = 1.0, *, sample_rate: int = SAMPLE_RATE, rms: float = 0.1, channels: int = 1,
          seed: int = 0) -> torch.Tensor:
    """Gaussian white noise of the given RMS, independent per channel: ``(channels, samples)``."""
    generator = torch.Generator().manual_seed(seed)
    return rms * torch.randn(channels, round(duration_s * sample_rate), generator=generator)


def sweep(start_hz: float, end_hz: float, duration_s: float = 1.0, *, sample_rate: int = SAMPLE_RATE,
          amplitude: float = 0.5, channels: int = 1) -> torch.Tensor:
    """An exponential sine sweep from ``start_hz`` to ``end_hz`` (Farina): ``(channels, samples)``."""
    t = _times_s(duration_s, sample_rate)
    rate = math.log(end_hz / start_hz) / duration_s
    wave = amplitude * torch.sin(2 * math.pi * start_hz * (torch.exp(rate * t) - 1) / rate)
    return wave.float().expand(channels, -1).clone()


def write_audio(path: str | Path, audio: torch.Tensor, sample_rate: int = SAMPLE_RATE, *,
                subtype: str | None = None) -> Path:
    """Write ``(channels, samples)`` with soundfile; the format follows the extension (``.wav``, ``.flac``, ...)."""
    sf.write(path, audio.detach().cpu().numpy().T, sample_rate, subtype=subtype)
    return Path(path)


def amplitude_at(x: torch.Tensor, freq_hz: float, sample_rate: int = SAMPLE_RATE) -> float:
    """Amplitude of the sinusoid at ``freq_hz`` in ``x`` (samples,), by projection."""
    t = torch.arange(x.shape[-1], dtype=torch.float64) / sample_rate
    x = x.double()
    return 2 * math.hypot(
        (x * torch.sin(2 * math.pi * freq_hz * t)).mean().item(),
        (x * torch.cos(2 * math.pi * freq_hz * t)).mean().item(),
    )


def band_to_rest_db(audio: np.ndarray, band_hz: tuple[float, float], sample_rate: int = SAMPLE_RATE) -> float:
    """The energy in ``band_hz`` of ``audio`` (samples, channels), as soundfile reads it, over the energy outside
    it, in dB: a change of one band's level moves it by that change, however loud the band is."""
    power = (np.abs(np.fft.rfft(audio, axis=0)) ** 2).sum(axis=1)
    freqs_hz = np.fft.rfftfreq(audio.shape[0], 1.0 / sample_rate)
    in_band = (freqs_hz >= band_hz[0]) & (freqs_hz < band_hz[1])
    return float(10 * np.log10(power[in_band].sum() / power[~in_band].sum()))
