"""Choosing the analysis excerpts: the high-energy windows that matching looks at.

Diff-MST trains and evaluates on 10 s windows whose mean energy is at least
0.001 (seed 002, section 3.1). Whole songs are too long to optimize over, so
matching picks a few such windows of the stems (the same window for every
stem, so the mix inside it is real) and of the reference, fits static console
parameters on them, and then renders the whole song with those parameters.
"""
from __future__ import annotations

from typing import Sequence

import torch

MIN_MEAN_ENERGY = 1e-3
# Windows are scored after normalizing the signal to this RMS, so the
# threshold means the same thing for a quiet raw session and a mastered song.
SCORING_RMS_DB = -16.0


def _window_starts(num_samples: int, window_samples: int, hop_samples: int) -> torch.Tensor:
    if num_samples <= window_samples:
        return torch.zeros(1, dtype=torch.long)
    return torch.arange(0, num_samples - window_samples + 1, hop_samples)


def _window_energy(x: torch.Tensor, starts: torch.Tensor, window_samples: int) -> torch.Tensor:
    """Mean energy of x (..., samples) in each window: (..., windows), via prefix sums."""
    window_samples = min(window_samples, x.shape[-1])
    prefix = torch.nn.functional.pad(x.double().pow(2).cumsum(dim=-1), (1, 0))
    return ((prefix[..., starts + window_samples] - prefix[..., starts]) / window_samples).float()


def pick_windows(
    mono: torch.Tensor,
    sample_rate: int,
    *,
    count: int,
    window_s: float,
    activity: torch.Tensor | None = None,
) -> list[int]:
    """Start samples of up to ``count`` non-overlapping high-energy windows.

    Args:
        mono: (samples,) the signal to score (a mixdown or a reference's channel mean).
        activity: optional (tracks, samples) stems; windows where more stems are
            active are preferred, so that every track is heard while fitting.

    Windows with mean energy below MIN_MEAN_ENERGY (after RMS normalization)
    are used only when there are not enough loud ones. Returned in time order.
    """
    window = int(round(window_s * sample_rate))
    hop = max(1, window // 4)
    starts = _window_starts(mono.shape[-1], window, hop)
    rms = mono.pow(2).mean().sqrt().clamp_min(1e-12)
    scaled = mono * (10 ** (SCORING_RMS_DB / 20) / rms)

    frames = _window_energy(scaled, starts, window)
    if activity is not None:
        # A stem counts as active in a window when it is within 30 dB of its loudest window.
        energy = _window_energy(activity, starts, window)
        active = (energy > energy.max(dim=1, keepdim=True).values * 1e-3).sum(dim=0).float()
    else:
        active = torch.zeros_like(frames)
    loud = (frames >= MIN_MEAN_ENERGY).float()
    # Lexicographic: loud enough first, then most active stems, then energy.
    score = loud * 1e6 + active * 1e3 + frames / frames.max().clamp_min(1e-12)

    chosen: list[int] = []
    for index in torch.argsort(score, descending=True).tolist():
        start = int(starts[index])
        if all(abs(start - other) >= window for other in chosen):
            chosen.append(start)
        if len(chosen) == count:
            break
    return sorted(chosen)


def stem_excerpts(
    tracks: Sequence[torch.Tensor], sample_rate: int, *, count: int = 3, window_s: float = 6.0
) -> tuple[list[torch.Tensor], list[int]]:
    """Cut the same high-energy windows out of every stem.

    Args:
        tracks: stems, each (channels, samples), all the same length.
    Returns:
        excerpts: one list entry per track, each (excerpts, channels, window_samples),
        and the start samples of the windows.
    """
    mixdown = torch.stack([t.mean(dim=0) for t in tracks])
    starts = pick_windows(mixdown.sum(dim=0), sample_rate, count=count, window_s=window_s, activity=mixdown)
    window = min(int(round(window_s * sample_rate)), tracks[0].shape[-1])
    excerpts = [torch.stack([t[:, s : s + window] for s in starts]) for t in tracks]
    return excerpts, starts


def reference_excerpts(
    reference: torch.Tensor, sample_rate: int, *, count: int = 3, window_s: float = 6.0
) -> torch.Tensor:
    """High-energy windows of a stereo reference: (excerpts, 2, window_samples)."""
    starts = pick_windows(reference.mean(dim=0), sample_rate, count=count, window_s=window_s)
    window = min(int(round(window_s * sample_rate)), reference.shape[-1])
    return torch.stack([reference[:, s : s + window] for s in starts])
