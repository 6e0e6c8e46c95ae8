"""A session's inputs (stems, reference, presets, the controller) and the vocabulary of a mix.

The mixing itself is :class:`mixing.session.MixSession`'s (its docstring lists the steps of each
method); this module holds what it reads: the methods, the stages' progress spans, where "auto" starts,
and what a mix returns (:class:`MixResult`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mixing import SAMPLE_RATE
from mixing.audio import Stems, extract_stems_zip, is_audio_filename, load_audio, load_stems, resample
from mixing.audio.validate import check_audible
from mixing.controller import REFERENCE_INPUT_LUFS, load_checkpoint, norm_to_mix_params, predict_params
from mixing.errors import CheckpointError, PresetError, StemError
from mixing.excerpts import reference_excerpts, stem_excerpts
from mixing.fit import FitResult
from mixing.loudness import normalize_to_lufs
from mixing.master_match import MasterMatchResult
from mixing.params import MixParams

ProgressCallback = Callable[[dict], None]

METHODS = ("auto", "controller", "fit", "equal-loudness")
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "controller.pt"
# Overall progress spans of the stages, in the order they run.
STAGE_SPANS = {
    "loading": (0.0, 0.1),
    "analysing": (0.1, 0.15),
    "predicting": (0.15, 0.2),
    "fitting": (0.2, 0.7),
    # Exactly one of these two runs: matching renders the whole song itself.
    "rendering": (0.7, 0.95),
    "matching": (0.7, 0.95),
    "measuring": (0.95, 1.0),
}
# Where "auto" starts. The shipped checkpoint, fitted for the same time budget,
# ends with a higher AF loss than the expert start (BENCHMARKS.md, quality), so
# auto starts from the expert rules; "controller" once a checkpoint beats them.
AUTO_START = "expert"
AUTO_STARTS = ("expert", "controller")
# The controller is trained on excerpts of this length (5-10 s) and sees one of them.
CONTROLLER_EXCERPT_S = 10.0
# Loudness of the equal-loudness mix when there is no reference: the streaming services' level.
DEFAULT_LOUDNESS_LUFS = -14.0


@dataclass
class MixResult:
    """What :meth:`mixing.session.MixSession.mix` made.

    ``params``: the console parameters rendered (None for the equal-loudness
    anchor, which uses no console). ``audio``: float32 (2, samples) on the CPU.
    ``method``: what actually ran: ``"expert+balance+fit+match"``, ``"controller+fit+match"``,
    ``"controller"``, ``"equal-loudness"`` or ``"params"``. ``timings_s``:
    seconds per stage that ran. ``fit``, ``match``: the results of fitting
    and master matching when they ran.
    ``warnings``: sentences for the user (stems padded, controller unusable).
    ``trim_db``: the input trim applied to each stem (empty for equal-loudness).
    """

    params: MixParams | None
    audio: torch.Tensor
    method: str
    track_names: list[str]
    loudness_lufs: float
    true_peak_dbtp: float
    timings_s: dict[str, float]
    fit: FitResult | None = None
    match: MasterMatchResult | None = None
    warnings: list[str] = field(default_factory=list)
    trim_db: list[float] = field(default_factory=list)

    def preset(self) -> dict:
        """The parameters as a preset JSON object, tracks named after the stems. Raises ValueError without params."""
        if self.params is None:
            raise ValueError(f"the {self.method} mix has no console parameters")
        return self.params.to_preset(self.track_names)


class StageProgress:
    """Maps each stage's own fraction onto its overall span and keeps the overall fraction from going back."""

    def __init__(self, callback: ProgressCallback | None):
        self.callback = callback
        self.overall = 0.0

    def __call__(self, stage: str, fraction: float, detail: str = "") -> None:
        if self.callback is None:
            return
        low, high = STAGE_SPANS[stage]
        # A stage that starts at 0 after the previous one ended, or a skipped stage, must not move the bar back.
        self.overall = max(self.overall, low + (high - low) * min(max(fraction, 0.0), 1.0))
        self.callback({"stage": stage, "progress": self.overall, "detail": detail})


def as_stereo(audio: torch.Tensor, what: str = "reference") -> torch.Tensor:
    """(channels, samples) with 1 or 2 channels -> (2, samples); a mono signal goes to both channels unchanged."""
    if audio.dim() != 2 or audio.shape[0] not in (1, 2) or audio.shape[-1] == 0:
        raise ValueError(f"{what}: expected shape (channels, samples) with 1 or 2 channels, got {tuple(audio.shape)}")
    return audio.expand(2, -1).contiguous() if audio.shape[0] == 1 else audio


def load_reference(path: str | os.PathLike, *, name: str | None = None, isolate: bool = True,
                   sample_rate_hz: int = SAMPLE_RATE) -> torch.Tensor:
    """Decode a reference song: float32 (2, samples) at ``sample_rate_hz`` (the session's). Raises StemError
    naming it, also when it is silent."""
    audio = load_audio(path, name=name, isolate=isolate, sample_rate_hz=sample_rate_hz)
    check_audible(name or Path(path).name, audio.numpy())
    return as_stereo(audio)


def stem_files(inputs: Sequence[str | os.PathLike], scratch_dir: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """Expand command-line inputs into stem files, in order.

    Each input is an audio file, a folder (its audio files, sorted by name,
    hidden files left out; sub-folders are not searched) or a ``.zip``
    (extracted into ``scratch_dir``). Returns the files and notes on ZIP
    entries that were skipped. Raises StemError for a missing input or a bad
    ZIP, and for a file that is not audio.
    """
    paths: list[Path] = []
    notes: list[str] = []
    for index, item in enumerate(map(Path, inputs)):
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.is_file() and not p.name.startswith(".")
                            and is_audio_filename(p.name))
        elif item.suffix.lower() == ".zip" and item.is_file():
            extracted = extract_stems_zip(item, Path(scratch_dir) / f"zip{index}")
            paths += extracted.paths
            notes += [f"{item.name}: skipped {entry.name}: {entry.reason}" for entry in extracted.skipped]
        elif item.is_file():
            if not is_audio_filename(item.name):
                raise StemError(item.name, f"it is not an audio file ({item.suffix or 'no extension'}).")
            paths.append(item)
        else:
            raise StemError(str(item), "no such file or folder.")
    return paths, notes


def load_inputs(stem_paths: Sequence[str | os.PathLike], reference_path: str | os.PathLike | None = None, *,
                progress: ProgressCallback | None = None) -> tuple[Stems, torch.Tensor | None]:
    """Load stems and the optional reference (stage "loading"). Raises StemsRejected, SessionError, StemError."""
    report = StageProgress(progress)
    report("loading", 0.0, f"{len(stem_paths)} stems")
    stems = load_stems(stem_paths)
    report("loading", 0.8, "reference" if reference_path is not None else "")
    reference = (load_reference(reference_path, sample_rate_hz=stems.sample_rate) if reference_path is not None
                 else None)
    report("loading", 1.0)
    return stems, reference


def read_preset(path: str | os.PathLike, track_names: Sequence[str]) -> MixParams:
    """Parameters from a preset JSON file, tracks matched to ``track_names`` by name, then position.

    Raises PresetError naming the file (unreadable, not JSON, or not fitting the schema).
    """
    path = Path(path)
    try:
        preset = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PresetError(f"{path.name}: cannot be read ({error.strerror or error}).") from None
    except ValueError as error:
        raise PresetError(f"{path.name} is not valid JSON ({error}).") from None
    try:
        return MixParams.from_preset(preset, track_names=track_names)
    except PresetError as error:
        raise PresetError(f"{path.name}: {error}") from None


_controllers: dict[tuple, torch.nn.Module] = {}


def load_controller(checkpoint: str | os.PathLike, device: torch.device | str | None = None) -> torch.nn.Module:
    """The controller stored at ``checkpoint``, loaded once per process and file version (path, size, mtime).

    Raises CheckpointError when the file is missing or unusable.
    """
    path = Path(checkpoint).resolve()
    try:
        stat = path.stat()
    except OSError:
        raise CheckpointError(f"no controller checkpoint is installed at {path}") from None
    device = torch.device(device) if device is not None else torch.device("cpu")
    key = (str(path), stat.st_size, stat.st_mtime_ns, str(device))
    if key not in _controllers:
        _controllers.clear()  # a new file replaces the old one; keep one model in memory
        _controllers[key] = load_checkpoint(path, map_location=device)
    return _controllers[key]


def predict_start(model: torch.nn.Module, tracks: Sequence[torch.Tensor], reference: torch.Tensor,
                  sample_rate: int) -> MixParams:
    """The controller's parameters for trimmed tracks (each (channels, samples)) and a reference (2, samples).

    The controller sees one high-energy excerpt of the tracks and one of the
    reference, the latter at ``REFERENCE_INPUT_LUFS`` as in training; both
    resampled to the controller's own rate when the session's differs.
    Master loudness and ceiling keep their defaults.
    """
    track_windows, _ = stem_excerpts(tracks, sample_rate, count=1, window_s=CONTROLLER_EXCERPT_S)
    ref_window = reference_excerpts(reference, sample_rate, count=1, window_s=CONTROLLER_EXCERPT_S)[0]
    ref_window, _ = normalize_to_lufs(ref_window, sample_rate, REFERENCE_INPUT_LUFS)
    model_rate = model.sample_rate
    track_norm, master_norm = predict_params(
        model, [resample(window[0], sample_rate, model_rate) for window in track_windows],
        resample(ref_window, sample_rate, model_rate), model_rate)
    return norm_to_mix_params(track_norm, master_norm)

