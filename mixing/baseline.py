"""The equal-loudness mix: the lowest anchor of Diff-MST's evaluation (seed 002, section 3.3).

Every track is loudness-normalized to -48 LUFS, the tracks are averaged, and
the mix is normalized to a target loudness. No style, EQ, dynamics or panning
is applied, so every other mix can be compared against it.

Choices where the paper is silent:

* Mono tracks go to both channels at -3 dB (a centre pan with a constant-power
  law). BS.1770 sums channel powers, so this keeps the track's loudness.
  Stereo tracks keep their image.
* Tracks shorter than the longest are padded with silence at the end.
* Silent tracks (no loudness) contribute silence and are not boosted; if
  every track is silent the mix is silence.
* Peak safety: if the normalized mix would have a sample peak above
  ``PEAK_CEILING_DBFS`` (-1 dBFS), the whole mix is scaled down to that peak,
  so it may end up quieter than the target. A plain scale, not a limiter,
  keeps the anchor free of any dynamics processing.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mixing.loudness import normalize_to_lufs

TRACK_LUFS = -48.0
PEAK_CEILING_DBFS = -1.0


def _to_stereo(track: torch.Tensor, index: int) -> torch.Tensor:
    if track.ndim != 2 or track.shape[0] not in (1, 2):
        raise ValueError(
            f"track {index + 1}: expected shape (channels, samples) with 1 or 2 channels, got {tuple(track.shape)}"
        )
    if track.shape[0] == 1:
        return track.expand(2, -1) / math.sqrt(2.0)
    return track


def equal_loudness_mix(
    tracks: Sequence[torch.Tensor],
    sample_rate: int,
    target_lufs: float = -14.0,
    *,
    loudness_lufs: Sequence[float] | None = None,
) -> torch.Tensor:
    """Mix tracks (each (channels, samples), 1 or 2 channels) at equal loudness.

    Returns a float32 stereo mix (2, samples), samples being the longest
    track's length, normalized to ``target_lufs`` (pass the reference's
    loudness to compare at matched level) unless that would push the sample
    peak above -1 dBFS. ``loudness_lufs``: each track's integrated loudness when it is known already (a mono
    track's as it is; its copy in both channels at -3 dB has the same), so that the tracks are not measured again.
    """
    if not tracks:
        raise ValueError("expected at least one track")
    if loudness_lufs is not None and len(loudness_lufs) != len(tracks):
        raise ValueError(f"loudness_lufs: {len(loudness_lufs)} values for {len(tracks)} tracks")
    num_samples = max(track.shape[-1] for track in tracks)
    mix = torch.zeros(2, num_samples)
    for index, track in enumerate(tracks):
        # One track at a time: a stereo copy of a mono track lives only while it is added.
        track, _ = normalize_to_lufs(_to_stereo(torch.as_tensor(track, dtype=torch.float32), index), sample_rate,
                                     TRACK_LUFS, loudness_lufs=None if loudness_lufs is None else loudness_lufs[index])
        mix[:, : track.shape[-1]] += track
    mix /= len(tracks)

    mix, _ = normalize_to_lufs(mix, sample_rate, target_lufs)
    peak = float(mix.abs().max())
    ceiling = 10.0 ** (PEAK_CEILING_DBFS / 20.0)
    if peak > ceiling:
        mix = mix * (ceiling / peak)
    return mix
