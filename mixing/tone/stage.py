"""The neural tone stage of the console (experimental): a track's family model before its channel strip.

Each track's ``tone_amount_pct`` (``mixing.params``) mixes its dry input with the model's output (the wet):
``dry + amount * (wet - dry)``. The wet depends only on the track and its family, so :class:`ToneStage` makes it
once per track and keeps it; moving the amount re-blends without running the network again. At 0 % the dry
input passes untouched (bit-identical), and a family without a checkpoint (``checkpoints/<family>.pt``) has
no stage: :func:`tone_unavailable` says why, for the studio to show.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from mixing import SAMPLE_RATE
from mixing.audio.io import resample
from mixing.errors import MixingError
from mixing.loudness import integrated_loudness_lufs
from mixing.tone.data import CLIP_LUFS, CLIP_S, loudest_window_start
from mixing.tone.family import FAMILIES
from mixing.tone.model import ToneDAE, process_audio
from mixing.tone.train import load_tone_checkpoint

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"


def checkpoint_path(family: str) -> Path:
    return CHECKPOINT_DIR / f"{family}.pt"


def tone_unavailable(family: str | None) -> str | None:
    """Why ``family`` has no tone stage ("no model for guitar yet"), or None when its checkpoint is installed."""
    if family not in FAMILIES:
        return "no family chosen" if not family else f"unknown family {family!r}"
    if not checkpoint_path(family).is_file():
        return f"no model for {family} yet"
    return None


def tone_families() -> list[dict]:
    """Every family with whether its tone model is installed, JSON-ready for the studio:
    ``[{"name": "bass", "tone_model": True, "reason": None}, {"name": "guitar", "tone_model": False,
    "reason": "no model for guitar yet"}, ...]``."""
    return [{"name": family, "tone_model": tone_unavailable(family) is None, "reason": tone_unavailable(family)}
            for family in FAMILIES]


@functools.cache
def tone_model(family: str) -> ToneDAE:
    """``family``'s model on the CPU, loaded once per process. Raises MixingError when there is none."""
    reason = tone_unavailable(family)
    if reason is not None:
        raise MixingError(f"The neural tone stage is unavailable: {reason}.")
    return load_tone_checkpoint(checkpoint_path(family))[0]


def tone_wet(audio: torch.Tensor, sample_rate: int, family: str) -> torch.Tensor:
    """``family``'s model on ``audio`` (channels, samples): (channels, samples) float32 on ``audio``'s device.

    The model runs at the rate it was trained at (:data:`mixing.SAMPLE_RATE`; other rates are resampled there
    and back) and on the loudness it was trained on: the loudest ``CLIP_S`` of the track brought to
    ``CLIP_LUFS``, the output scaled back, so the stage changes tone, not level.
    """
    if audio.dim() != 2:
        raise ValueError(f"expected audio of shape (channels, samples), got {tuple(audio.shape)}")
    model = tone_model(family)
    at_model_rate = resample(audio.float().cpu(), sample_rate, SAMPLE_RATE)
    mono = at_model_rate.mean(dim=0).numpy()
    start = loudest_window_start(mono, SAMPLE_RATE)
    loudness_lufs = integrated_loudness_lufs(at_model_rate[:, start:start + int(CLIP_S * SAMPLE_RATE)], SAMPLE_RATE)
    if loudness_lufs == float("-inf"):
        return audio.float().clone()  # silence: nothing to shape, and no gain can reach the training loudness
    wet = resample(process_audio(model, at_model_rate, 10.0 ** ((CLIP_LUFS - loudness_lufs) / 20.0)), SAMPLE_RATE,
                   sample_rate)
    samples = audio.shape[-1]
    wet = torch.nn.functional.pad(wet[:, :samples], (0, max(0, samples - wet.shape[-1])))
    return wet.to(audio.device)


def tone_blend(dry: torch.Tensor, wet: torch.Tensor, amount_pct: float) -> torch.Tensor:
    """``dry`` and ``wet`` (channels, samples) mixed ``amount_pct`` (0-100) % wet: ``dry`` itself at 0 %."""
    if amount_pct <= 0.0:
        return dry
    return torch.lerp(dry, wet, min(amount_pct, 100.0) / 100.0)


class ToneStage:
    """The tone stage of one session's tracks: their ``families`` (one per track, None: unknown) and each
    track's wet audio, made on first use and kept until the track's family changes (:meth:`set_families`).

    ``guess(index)``, when given, names an unknown family the first time its track needs one (the stage turned
    on), so that a guess that costs time (from the sound) is made only then.
    """

    def __init__(self, families: Sequence[str | None], guess: Callable[[int], str] | None = None):
        self.families: list[str | None] = list(families)
        self._guess = guess
        self._wet: dict[int, tuple[str, torch.Tensor]] = {}

    def set_families(self, families: Sequence[str | None]) -> None:
        if len(families) != len(self.families):
            raise ValueError(f"{len(families)} families for {len(self.families)} tracks")
        self.families = list(families)
        self._wet = {index: kept for index, kept in self._wet.items() if kept[0] == self.families[index]}

    def active_family(self, index: int, amount_pct: float) -> str | None:
        """The family whose model shapes track ``index`` at ``amount_pct``; None when the stage passes it dry
        (amount 0, or a family without a model)."""
        if amount_pct <= 0.0:
            return None
        if self.families[index] is None and self._guess is not None:
            self.families[index] = self._guess(index)
        family = self.families[index]
        return family if tone_unavailable(family) is None else None

    def apply(self, index: int, dry: torch.Tensor, amount_pct: float, sample_rate: int) -> torch.Tensor:
        """Track ``index``'s input to its strip: ``dry`` (channels, samples) blended with its kept wet."""
        family = self.active_family(index, amount_pct)
        if family is None:
            return dry
        kept = self._wet.get(index)
        if kept is None or kept[0] != family:
            self._wet.pop(index, None)  # frees the old wet before the new is made
            kept = self._wet[index] = (family, tone_wet(dry, sample_rate, family))
        return tone_blend(dry, kept[1], amount_pct)
