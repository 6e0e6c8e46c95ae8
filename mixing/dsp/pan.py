"""Panning and stereo width.

Pan laws, with ``pan_pct`` in [-100, 100] (-100 = full left):

- mono sources: constant power, ``left = cos(theta)``, ``right = sin(theta)``
  with ``theta = (pan_pct + 100) / 200 * pi / 2``: -3 dB on each side at the
  centre, one side silent at +-100 %. Unlike dasp's square-root law, the
  gradient stays finite at the ends of the range.
- stereo sources: a balance control, unity on both sides at the centre; moving
  right attenuates only the left channel (by ``cos(pan_pct / 100 * pi / 2)``)
  until it is silent at +100 %, and vice versa.
"""

from __future__ import annotations

import math

import torch


def _pan_column(pan_pct: torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor:
    pan_pct = torch.as_tensor(pan_pct, dtype=like.dtype, device=like.device).reshape(-1)
    if pan_pct.shape[0] not in (1, batch):
        raise ValueError(f"pan_pct: expected shape (batch,) = ({batch},), got {tuple(pan_pct.shape)}")
    return pan_pct.expand(batch)


def pan_gains(pan_pct: torch.Tensor, channels: int) -> torch.Tensor:
    """Left and right gains of shape (batch, 2) for sources with 1 or 2 ``channels``; ``pan_pct`` of shape (batch,)."""
    pan_pct = torch.as_tensor(pan_pct).clamp(-100.0, 100.0)
    if channels == 1:
        theta = (pan_pct + 100.0) * (math.pi / 400.0)
        return torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)
    if channels == 2:
        left = torch.cos(pan_pct.clamp_min(0.0) * (math.pi / 200.0))
        right = torch.cos((-pan_pct).clamp_min(0.0) * (math.pi / 200.0))
        return torch.stack([left, right], dim=-1)
    raise ValueError(f"pan: sources must have 1 or 2 channels, got {channels}")


def pan_pct_for_gains(left: float, right: float, channels: int) -> float:
    """The inverse of :func:`pan_gains`: the pan of a source with 1 or 2 ``channels`` whose law sends amplitude
    gains in the ratio ``left : right``, in [-100, 100]."""
    if channels == 1:
        pct = math.atan2(right, left) / (math.pi / 2) * 200.0 - 100.0
    else:
        ratio = min(left, right) / max(left, right, 1e-30)
        pct = math.acos(min(ratio, 1.0)) * 200.0 / math.pi
        pct = pct if left < right else -pct
    return min(max(pct, -100.0), 100.0)


def pan(x: torch.Tensor, sample_rate: int, pan_pct: torch.Tensor) -> torch.Tensor:
    """Place ``x`` of shape (batch, channels 1 or 2, samples) in the stereo field; returns (batch, 2, samples).

    ``pan_pct`` has shape (batch,) (a scalar broadcasts). ``sample_rate`` is
    unused; it keeps the signature of the other processors.
    """
    if x.dim() != 3 or x.shape[1] not in (1, 2):
        raise ValueError(f"x: expected shape (batch, channels 1 or 2, samples), got {tuple(x.shape)}")
    gains = pan_gains(_pan_column(pan_pct, x.shape[0], x), x.shape[1])
    return x * gains.unsqueeze(-1)


def stereo_width(x: torch.Tensor, sample_rate: int, width_pct: torch.Tensor) -> torch.Tensor:
    """Scale the side signal of ``x`` (batch, 2, samples) by ``width_pct / 100``; returns the same shape.

    0 % folds to mono (left == right), 100 % leaves ``x`` unchanged, 200 % doubles the side.
    ``width_pct`` has shape (batch,) (a scalar broadcasts).
    """
    if x.dim() != 3 or x.shape[1] != 2:
        raise ValueError(f"x: expected shape (batch, 2, samples), got {tuple(x.shape)}")
    # Mid/side scaling as one 2x2 matrix per item: one pass over the audio, and
    # at 100 % the matrix is the identity, so the signal passes bit-exact.
    matrix = width_matrix(torch.as_tensor(width_pct, dtype=x.dtype, device=x.device))
    return matrix.expand(x.shape[0], 2, 2) @ x


def width_matrix(width_pct: torch.Tensor) -> torch.Tensor:
    """The width stage of :func:`stereo_width` as matrices on (left, right): ``width_pct`` (n,) or a scalar ->
    (n, 2, 2), in its dtype and on its device."""
    width = width_pct.reshape(-1) / 100.0
    direct, cross = (1.0 + width) / 2, (1.0 - width) / 2
    return torch.stack([torch.stack([direct, cross], -1), torch.stack([cross, direct], -1)], -2)
