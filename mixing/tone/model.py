"""The stem-tone deep autoencoder and its STFT front end.

Frames: Hann window of ``N_FFT`` = 2048 samples, hop 1024, so ``N_BINS`` = 1025 magnitude bins per frame in and
out. The network is a feed-forward stack of three 1024-unit ReLU layers with dropout 0.2 and a linear output
clamped at zero (a magnitude is never negative).
"""
from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

N_FFT = 2048
HOP = 1024
N_BINS = N_FFT // 2 + 1
HIDDEN_UNITS = 1024
HIDDEN_LAYERS = 3
DROPOUT = 0.2


def _window(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.hann_window(N_FFT, device=device, dtype=dtype)


def stft(audio: torch.Tensor) -> torch.Tensor:
    """Complex STFT of mono ``audio`` (samples,): returns (frames, N_BINS), centred frames."""
    spectrum = torch.stft(audio, N_FFT, HOP, window=_window(audio.device, audio.dtype), center=True,
                          return_complex=True)
    return spectrum.transpose(0, 1)


def magnitude_frames(audio: torch.Tensor) -> torch.Tensor:
    """|STFT| of mono ``audio`` (samples,): (frames, N_BINS)."""
    return stft(audio).abs()


def resynthesize(magnitude: torch.Tensor, phase_source: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Inverse STFT of ``magnitude`` (frames, N_BINS) with the phase of the complex STFT ``phase_source``
    (frames, N_BINS), as the seeds do with the raw stem's phase; returns (num_samples,)."""
    phase = torch.polar(torch.ones_like(magnitude), phase_source.angle())
    spectrum = (magnitude * phase).transpose(0, 1)
    return torch.istft(spectrum, N_FFT, HOP, window=_window(magnitude.device, magnitude.dtype), center=True,
                       length=num_samples)


class ToneDAE(nn.Module):
    """Magnitude frames (batch, N_BINS) -> processed magnitude frames (batch, N_BINS).

    ``encoders[i]`` are the hidden layers (Linear + ReLU), each pretrained greedily as the encoder of its own
    one-layer autoencoder (``mixing.tone.train``); ``output`` maps the last hidden layer to the bins.
    """

    def __init__(self, hidden_units: int = HIDDEN_UNITS, hidden_layers: int = HIDDEN_LAYERS,
                 dropout: float = DROPOUT):
        super().__init__()
        sizes = [N_BINS] + [hidden_units] * hidden_layers
        self.encoders = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_units, N_BINS)

    def hidden(self, frames: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """The code after the first ``layers`` hidden layers (all by default): (batch, hidden_units)."""
        code = frames
        for encoder in self.encoders[:layers]:
            code = self.dropout(torch.relu(encoder(code)))
        return code

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.output(self.hidden(frames)))


@torch.no_grad()
def process_audio(model: ToneDAE, audio: torch.Tensor, scale: float, batch_frames: int = 512) -> torch.Tensor:
    """Run ``model`` on ``audio`` (channels, samples): each channel's magnitude frames through the network, the
    result resynthesised with that channel's phase; returns (channels, samples).

    ``scale`` is the gain (linear) that brings the stem to the loudness the model was trained at; the output is
    scaled back by its inverse, so the model changes tone, not level.
    """
    model.eval()
    channels = []
    for channel in audio:
        spectrum = stft(channel * scale)
        magnitude = torch.cat([model(chunk) for chunk in spectrum.abs().split(batch_frames)])
        channels.append(resynthesize(magnitude, spectrum, channel.shape[-1]) / scale)
    return torch.stack(channels)
