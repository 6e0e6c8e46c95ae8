"""Choosing the analysis excerpts: the high-energy windows that matching looks at.

Diff-MST trains and evaluates on 10 s windows whose mean energy is at least
0.001 (seed 002, section 3.1). Whole songs are too long to optimize over, so
matching picks a few such windows of the stems (the same window for every
stem, so the mix inside it is real) and of the reference, fits static console
parameters on them, and then renders the whole song with those parameters.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

MIN_MEAN_ENERGY = 1e-3
# Windows are scored after normalizing the signal to this RMS, so the
# threshold means the same thing for a quiet raw session and a mastered song.
SCORING_RMS_DB = -16.0


# Windows start every quarter window: the scores come from the mean energies of
# quarter-window blocks, one pass over the audio.
BLOCKS_PER_WINDOW = 4


def _window_samples(window_s: float, sample_rate: int) -> int:
    """A window's length in samples: a whole number of blocks, so that scored and cut windows are the same."""
    return max(1, round(window_s * sample_rate) // BLOCKS_PER_WINDOW) * BLOCKS_PER_WINDOW


def _window_energies(x: torch.Tensor, hop_samples: int) -> torch.Tensor:
    """Mean energy of x (..., samples) in windows of BLOCKS_PER_WINDOW blocks of ``hop_samples``,
    starting every block: (..., windows). Audio shorter than a window is one window."""
    blocks = x.shape[-1] // hop_samples
    if blocks < BLOCKS_PER_WINDOW:
        return x.pow(2).mean(dim=-1, keepdim=True)
    energy = x[..., : blocks * hop_samples].unflatten(-1, (blocks, hop_samples)).pow(2).mean(dim=-1)
    return energy.unfold(-1, BLOCKS_PER_WINDOW, 1).mean(dim=-1)


def pick_windows(
    mono: torch.Tensor,
    sample_rate: int,
    *,
    count: int,
    window_s: float,
    activity: torch.Tensor | Sequence[torch.Tensor] | None = None,
) -> list[int]:
    """Start samples of up to ``count`` non-overlapping high-energy windows.

    Args:
        mono: (samples,) the signal to score (a mixdown or a reference's channel mean).
        activity: optional stems, (tracks, samples) or a sequence of (samples,) or (channels, samples) (their
            channel mean is taken); windows where more stems are active are preferred, so that every track is
            heard while fitting.

    Windows with mean energy below MIN_MEAN_ENERGY (after RMS normalization)
    are used only when there are not enough loud ones. Returned in time order.
    """
    window = _window_samples(window_s, sample_rate)
    hop = window // BLOCKS_PER_WINDOW
    rms = mono.pow(2).mean().sqrt().clamp_min(1e-12)
    scaled = mono * (10 ** (SCORING_RMS_DB / 20) / rms)

    frames = _window_energies(scaled, hop)
    starts = torch.arange(frames.shape[-1]) * hop
    if activity is not None:
        # A stem counts as active in a window when it is within 30 dB of its loudest window.
        # One stem at a time: squaring all of a long session's stems at once would double their memory.
        energy = torch.stack([_window_energies(track.mean(dim=0) if track.dim() == 2 else track, hop)
                              for track in activity])
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
    mixdown = torch.zeros(tracks[0].shape[-1])
    for track in tracks:
        mixdown += track.mean(dim=0)
    starts = pick_windows(mixdown, sample_rate, count=count, window_s=window_s, activity=tracks)
    window = min(_window_samples(window_s, sample_rate), tracks[0].shape[-1])
    excerpts = [torch.stack([t[:, s : s + window] for s in starts]) for t in tracks]
    return excerpts, starts


def reference_excerpts(
    reference: torch.Tensor, sample_rate: int, *, count: int = 3, window_s: float = 6.0
) -> torch.Tensor:
    """High-energy windows of a stereo reference: (excerpts, 2, window_samples)."""
    starts = pick_windows(reference.mean(dim=0), sample_rate, count=count, window_s=window_s)
    window = min(_window_samples(window_s, sample_rate), reference.shape[-1])
    return torch.stack([reference[:, s : s + window] for s in starts])
