"""The stem-tone deep autoencoder and its STFT front end.

Frames: Hann window of ``N_FFT`` = 2048 samples, hop 1024, so ``N_BINS`` = 1025 magnitude bins per frame in and
out. The network is a feed-forward stack of three 1024-unit ReLU layers with dropout 0.2, as the seeds say.

What differs from the seeds: the network reads standardised log-magnitude frames and predicts a per-bin log-gain
(a mask) that multiplies the raw magnitude, instead of the processed magnitude itself; its output layer starts
at zero, so an untrained model is exactly the identity. A plain magnitude-to-magnitude DAE trained on our few
minutes of data came out worse than passing the raw stem through (BENCHMARKS.md, neural tone); a mask only has
to learn the change, which for an EQ is the same gain at every frame.
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
# Floor added to magnitudes before the log (about -80 dB below a full-scale bin at -23 LUFS clips).
LOG_FLOOR = 1e-4
# The mask's log-gain is squashed into +-MAX_LOG_GAIN (natural log: +-24 dB) so no bin can explode.
MAX_LOG_GAIN = 24.0 / 20.0 * 2.302585


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

    ``features`` turns magnitudes into standardised log-magnitudes (``input_mean``/``input_std`` are buffers set
    from the training frames, saved with the weights); ``encoders[i]`` are the hidden layers (Linear + ReLU),
    each pretrained greedily as the encoder of its own one-layer autoencoder (``mixing.tone.train``);
    ``output`` maps the last hidden layer to a log-gain per bin, zero-initialised (identity at the start).
    """

    def __init__(self, hidden_units: int = HIDDEN_UNITS, hidden_layers: int = HIDDEN_LAYERS,
                 dropout: float = DROPOUT):
        super().__init__()
        sizes = [N_BINS] + [hidden_units] * hidden_layers
        self.encoders = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_units, N_BINS)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.register_buffer("input_mean", torch.zeros(()))
        self.register_buffer("input_std", torch.ones(()))

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """Standardised log-magnitudes of ``frames`` (batch, N_BINS): what the hidden layers read."""
        return (torch.log(frames + LOG_FLOOR) - self.input_mean) / self.input_std

    @torch.no_grad()
    def fit_features(self, frames: torch.Tensor) -> None:
        """Set the standardisation from training magnitude frames (frames, N_BINS)."""
        logs = torch.log(frames + LOG_FLOOR)
        self.input_mean.copy_(logs.mean())
        self.input_std.copy_(logs.std().clamp_min(1e-3))

    def log_gain(self, frames: torch.Tensor) -> torch.Tensor:
        """The mask's natural-log gain per bin for magnitude ``frames`` (batch, N_BINS), in +-MAX_LOG_GAIN."""
        return MAX_LOG_GAIN * torch.tanh(self.output(self.hidden(self.features(frames))) / MAX_LOG_GAIN)

    def hidden(self, features: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """The code of ``features`` (batch, N_BINS) after the first ``layers`` hidden layers (all by default):
        (batch, hidden_units)."""
        code = features
        for encoder in self.encoders[:layers]:
            code = self.dropout(torch.relu(encoder(code)))
        return code

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return frames * torch.exp(self.log_gain(frames))


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
