"""A shared stereo reverb bus: generated impulse response, one FFT convolution of the summed send.

Every track sends to one bus (``reverb_send_db``, post pan); the bus convolves the mono sum of that stereo send
with a stereo impulse response and returns the wet signal into the mix before the master bus. One convolution
for the whole song, whatever the number of tracks: the send is summed first.

The impulse response is decaying Gaussian noise, independent on the two channels (so the return is wide and
decorrelated from the dry mix), split into ``IR_BANDS`` bands on a log-frequency axis, each band with its own
exponential decay: the reverberation time at frequency f is ``decay_s / (1 + (f / damping_hz)^2)``, so above
the damping frequency the highs die away faster, as in a room whose air and walls absorb them. Each channel is
scaled to unit energy, so a return at 0 dB gives back the send's power (for broadband material). All of it is
torch arithmetic, differentiable in decay, damping and return level (the pre-delay is a whole number of
samples).
"""

from __future__ import annotations

import math

import torch

from mixing.dsp.eq import fft_size

IR_BANDS = 12
# The response runs this many reverberation times of the slowest band past the pre-delay: at 1.5 times the
# RT60 the tail is 90 dB down, so cutting it there leaves the decay's -60 dB point where it belongs.
IR_LENGTH_RT60S = 1.5
# A fixed seed: the same settings give the same reverb in every render, preset and test.
IR_SEED = 20261207
# -60 dB of energy is ln(10^6) nepers of energy: an envelope exp(-t * _RT60_NEPERS / (2 * rt60)) in amplitude.
_RT60_NEPERS = 6.0 * math.log(10.0)
_LOWEST_BAND_HZ = 50.0


def band_decay_s(decay_s: torch.Tensor | float, damping_hz: torch.Tensor | float,
                 freq_hz: torch.Tensor) -> torch.Tensor:
    """The RT60 in s at each of ``freq_hz`` (any shape): ``decay_s`` at low frequencies, falling above
    ``damping_hz`` as ``1 / (1 + (f / damping_hz)^2)``."""
    return torch.as_tensor(decay_s) / (1.0 + (freq_hz / torch.as_tensor(damping_hz)) ** 2)


def band_masks(n_fft: int, sample_rate: int, bands: int = IR_BANDS) -> tuple[torch.Tensor, torch.Tensor]:
    """Complementary raised-cosine masks on a log-frequency axis: ``(masks (bands, n_fft // 2 + 1), centres_hz
    (bands,))``; the masks sum to 1 at every bin, so the bands add back up to the noise they split."""
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64)
    centres_hz = torch.logspace(math.log10(_LOWEST_BAND_HZ), math.log10(sample_rate / 2), bands, dtype=torch.float64)
    position = torch.log(freqs.clamp(min=_LOWEST_BAND_HZ)) - math.log(_LOWEST_BAND_HZ)
    step = (math.log(sample_rate / 2) - math.log(_LOWEST_BAND_HZ)) / (bands - 1)
    index = (position / step).clamp(max=bands - 1)
    # A bin between centres k and k + 1 splits as cos^2 / sin^2 of its fractional position.
    masks = torch.zeros(bands, freqs.numel(), dtype=torch.float64)
    lower = index.floor().long().clamp(max=bands - 2)
    fraction = (index - lower).clamp(0.0, 1.0)
    masks.scatter_(0, lower.unsqueeze(0), torch.cos(0.5 * math.pi * fraction).pow(2).unsqueeze(0))
    masks.scatter_add_(0, (lower + 1).unsqueeze(0), torch.sin(0.5 * math.pi * fraction).pow(2).unsqueeze(0))
    return masks.float(), centres_hz.float()


def impulse_response(decay_s: torch.Tensor | float, predelay_ms: float, damping_hz: torch.Tensor | float,
                     sample_rate: int, seed: int = IR_SEED) -> torch.Tensor:
    """The bus's stereo impulse response, shape (2, samples), each channel of unit energy.

    ``predelay_ms`` of silence comes first; then decaying noise, each band reaching -60 dB of energy after its
    :func:`band_decay_s`. Differentiable in ``decay_s`` and ``damping_hz`` when they are tensors.
    """
    decay = torch.as_tensor(decay_s, dtype=torch.float32)
    if float(decay) <= 0:
        raise ValueError(f"reverb decay must be positive, got {float(decay)} s")
    if predelay_ms < 0:
        raise ValueError(f"reverb pre-delay must be >= 0 ms, got {predelay_ms}")
    tail = max(math.ceil(IR_LENGTH_RT60S * float(decay) * sample_rate), 2)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(2, tail, generator=generator)
    masks, centres_hz = band_masks(tail, sample_rate)
    # (2, bands, tail): the noise split into bands, each then shaped by its own envelope.
    banded = torch.fft.irfft(torch.fft.rfft(noise).unsqueeze(1) * masks, tail)
    rt60 = band_decay_s(decay, torch.as_tensor(damping_hz, dtype=torch.float32), centres_hz)
    time_s = torch.arange(tail, dtype=torch.float32) / sample_rate
    envelopes = torch.exp(-0.5 * _RT60_NEPERS * time_s / rt60.unsqueeze(-1))
    ir = (banded * envelopes).sum(dim=1)
    ir = ir / ir.pow(2).sum(dim=-1, keepdim=True).sqrt()
    predelay = round(predelay_ms * sample_rate / 1000.0)
    return torch.nn.functional.pad(ir, (predelay, 0))


def reverb_return(send: torch.Tensor, sample_rate: int, decay_s: torch.Tensor | float, predelay_ms: float,
                  damping_hz: torch.Tensor | float, return_db: torch.Tensor | float) -> torch.Tensor:
    """The wet signal of the bus for the summed ``send`` of shape (..., 2, samples): its mono sum convolved
    with :func:`impulse_response` (one FFT of the whole length), scaled by ``return_db``, cut to ``samples``
    (a song's last tail is cut off with it). Returns (..., 2, samples) in ``send``'s dtype."""
    if send.shape[-2] != 2:
        raise ValueError(f"the reverb send must be stereo (..., 2, samples), got shape {tuple(send.shape)}")
    samples = send.shape[-1]
    ir = impulse_response(decay_s, predelay_ms, damping_hz, sample_rate).to(send.device)
    n_fft = fft_size(samples, ir.shape[-1])
    mono = send.float().mean(dim=-2, keepdim=True)
    wet = torch.fft.irfft(torch.fft.rfft(mono, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)[..., :samples]
    gain = 10.0 ** (torch.as_tensor(return_db, dtype=wet.dtype, device=wet.device) / 20.0)
    return (wet * gain).to(send.dtype)
