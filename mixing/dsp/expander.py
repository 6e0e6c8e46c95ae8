"""Slow downward expander for the master bus: it lowers passages below a threshold, restoring contrast.

The level detector is the RMS of both channels (linked, as in
``mixing.dsp.compressor``) over a centred window of ``window_ms``. Below
``threshold_db`` every dB of level becomes ``ratio`` dB:

    gain_db = max((ratio - 1) * min(level_db - threshold_db, 0), -range_db)

so ``ratio = 1`` passes the signal unchanged. The window is long (400 ms, a
loudness block) because the expander rides sections of a song, not notes: a
quiet verse sits lower against its chorus, while the transients inside a
passage, which set its crest factor, pass untouched. Centring the window looks
ahead by half of it, which an offline render can afford: the gain opens before
a loud entry instead of clipping its attack. ``range_db`` caps the cut so that
quiet intros and fades are lowered, never muted.

Where the reference is the more dynamic song (its quiet passages sit further
below its loud ones than the mix's do), no compressor setting can match it,
and this stage can; ``mixing.master_match`` chooses between the two.
"""
from __future__ import annotations

import torch

WINDOW_MS = 400.0
RANGE_DB = 12.0
# The level is measured on 10 ms blocks and the gain interpolated between their centres: a 400 ms window
# changes little within 10 ms, and per-sample sums over minutes of audio cost as much as a whole render.
BLOCK_MS = 10.0
# -120 dB: keeps the level finite on digital silence.
_POWER_FLOOR = 1e-12


def _block_samples(sample_rate: int) -> int:
    return max(1, round(BLOCK_MS * sample_rate / 1000.0))


def moving_rms_db(x: torch.Tensor, sample_rate: int, window_ms: float = WINDOW_MS) -> torch.Tensor:
    """Level in dB of ``x`` (batch, channels, samples) per block of ``BLOCK_MS``: mean square over channels
    and the blocks within a centred window of ``window_ms`` (fewer at the ends of the signal);
    (batch, blocks), the last block holding what is left over."""
    block = _block_samples(sample_rate)
    samples = x.shape[-1]
    blocks = -(-samples // block)
    power = torch.nn.functional.pad(x.square().mean(dim=1), (0, blocks * block - samples))
    block_sum = power.reshape(power.shape[0], blocks, block).sum(dim=-1).double()
    block_samples = torch.full((blocks,), float(block), dtype=torch.float64, device=x.device)
    block_samples[-1] = samples - (blocks - 1) * block
    half = max(0, round(window_ms / BLOCK_MS / 2.0))

    def window_sums(values: torch.Tensor) -> torch.Tensor:
        # Cumulative sums padded with their end values, so that the windows at the edges are cut, not wrapped.
        cumulative = torch.nn.functional.pad(values.cumsum(dim=-1), (1, 0))
        cumulative = torch.nn.functional.pad(cumulative.unsqueeze(1), (half, half + 1), mode="replicate").squeeze(1)
        return cumulative[..., 2 * half + 1 : 2 * half + 1 + blocks] - cumulative[..., :blocks]

    mean_square = window_sums(block_sum) / window_sums(block_samples.unsqueeze(0))
    return (10.0 * torch.log10(mean_square.clamp_min(_POWER_FLOOR))).to(x.dtype)


def expander(
    x: torch.Tensor,
    sample_rate: int,
    threshold_db: torch.Tensor,
    ratio: torch.Tensor,
    *,
    window_ms: float = WINDOW_MS,
    range_db: float = RANGE_DB,
) -> torch.Tensor:
    """Downward expansion of ``x`` (batch, channels, samples); ``threshold_db`` (RMS level, dBFS) and
    ``ratio`` (``:1``, at least 1) of shape (batch,). Returns the shape of ``x``; differentiable in ``x``,
    ``threshold_db`` and ``ratio``."""
    if x.dim() != 3:
        raise ValueError(f"x: expected shape (batch, channels, samples), got {tuple(x.shape)}")
    threshold_db = torch.as_tensor(threshold_db, dtype=x.dtype, device=x.device).reshape(-1, 1)
    ratio = torch.as_tensor(ratio, dtype=x.dtype, device=x.device).reshape(-1, 1)
    if bool((ratio == 1.0).all()):
        return x  # the common case (expander off) costs nothing
    below_db = (moving_rms_db(x, sample_rate, window_ms) - threshold_db).clamp(max=0.0)
    block_gain_db = ((ratio - 1.0) * below_db).clamp(min=-range_db)
    # Linear between block centres (held before the first and after the last).
    gain_db = torch.nn.functional.interpolate(block_gain_db.unsqueeze(1), scale_factor=_block_samples(sample_rate),
                                              mode="linear", align_corners=False)[:, 0, : x.shape[-1]]
    return x * torch.pow(10.0, gain_db / 20.0).unsqueeze(1)
