"""The one way to mix a session: the CLI, the Celery worker and the benchmarks all call :func:`mix_session`.

Steps of an automatic mix (``method="auto"``):

1. analysing: trim every stem to ``TRACK_INPUT_LUFS`` (the console's input trim)
   and measure the reference's loudness;
2. predicting: a starting mix, from the expert rules of :mod:`mixing.expert`
   with each track's level and pan read off the reference's long-term spectra
   (:func:`mixing.balance.balance_to_reference`), or from the controller, when
   :data:`AUTO_START` says so and a checkpoint loads;
3. fitting: move the parameters until the mix's audio features match the
   reference's (:func:`mixing.fit.fit_params`), within a time budget;
4. matching: render the whole song through the console, at the reference's
   integrated loudness, under the true-peak ceiling, and close the remaining
   whole-song gaps with the master bus's match EQ, width and balance
   (:func:`mixing.master_match.match_master`); the best render is the mix;
5. measuring: the mix's loudness and true peak.

The other methods drop steps: ``"fit"`` always starts from the expert start and its
reference balance (so it runs the same with or without a trained model, which makes it the
baseline the benchmarks compare against), ``"controller"`` renders the
controller's prediction as it is (stage "rendering" instead of fitting and
matching), and ``"equal-loudness"`` is the anchor of :mod:`mixing.baseline`.
Given ``params``, the session is only trimmed and rendered with them (a
preset, or a user's edits).

Progress is reported as dicts ``{"stage", "progress", "detail"}`` where
``progress`` is the overall fraction in [0, 1], never decreasing; each stage
covers the span of :data:`STAGE_SPANS`.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mixing.audio import Stems, extract_stems_zip, is_audio_filename, load_audio, load_stems
from mixing.balance import balance_to_reference
from mixing.baseline import equal_loudness_mix
from mixing.controller import REFERENCE_INPUT_LUFS, load_checkpoint, norm_to_mix_params, predict_params
from mixing.device import pick_device
from mixing.dsp.console import IncrementalRenderer
from mixing.dsp.limiter import true_peak_dbtp
from mixing.errors import CheckpointError, MixingError, PresetError, StemError
from mixing.excerpts import reference_excerpts, stem_excerpts
from mixing.expert import starting_params
from mixing.features import carries_stereo
from mixing.fit import DEFAULT_TIME_BUDGET_S, FitResult, fit_params, reference_loudness_lufs
from mixing.loudness import integrated_loudness_lufs, normalize_to_lufs, trim_tracks_to_input_level
from mixing.master_match import MasterMatchResult, match_master
from mixing.params import MixParams

logger = logging.getLogger(__name__)

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
    """What :func:`mix_session` made.

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


class _Progress:
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


def load_reference(path: str | os.PathLike, *, name: str | None = None, isolate: bool = True) -> torch.Tensor:
    """Decode a reference song: float32 (2, samples) at :data:`mixing.SAMPLE_RATE`. Raises StemError naming it."""
    return as_stereo(load_audio(path, name=name, isolate=isolate))


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
    report = _Progress(progress)
    report("loading", 0.0, f"{len(stem_paths)} stems")
    stems = load_stems(stem_paths)
    report("loading", 0.8, "reference" if reference_path is not None else "")
    reference = load_reference(reference_path) if reference_path is not None else None
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
    reference, the latter at ``REFERENCE_INPUT_LUFS`` as in training.
    Master loudness and ceiling keep their defaults.
    """
    track_windows, _ = stem_excerpts(tracks, sample_rate, count=1, window_s=CONTROLLER_EXCERPT_S)
    ref_window = reference_excerpts(reference, sample_rate, count=1, window_s=CONTROLLER_EXCERPT_S)[0]
    ref_window, _ = normalize_to_lufs(ref_window, sample_rate, REFERENCE_INPUT_LUFS)
    track_norm, master_norm = predict_params(model, [window[0] for window in track_windows], ref_window, sample_rate)
    return norm_to_mix_params(track_norm, master_norm)


def mix_session(
    stems: Stems,
    reference: torch.Tensor | None,
    *,
    method: str = "auto",
    params: MixParams | None = None,
    checkpoint: str | os.PathLike | torch.nn.Module | None = DEFAULT_CHECKPOINT,
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S,
    iterations: int = 150,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    device: torch.device | str | None = None,
    renderer: IncrementalRenderer | None = None,
    auto_start: str | None = None,
) -> MixResult:
    """Mix ``stems`` toward ``reference`` (1 or 2 channels, samples, at ``stems.sample_rate``).

    Args:
        method: one of :data:`METHODS` (see the module docstring). Must stay
            "auto" when ``params`` are given.
        params: render these parameters as they are (one track dict per stem).
        checkpoint: the controller: a checkpoint path (loaded once per
            process, see :func:`load_controller`), an already loaded model, or
            None. Without a usable one, "auto" starts from the expert rules
            (a damaged file adds a warning) and "controller" raises CheckpointError.
            "fit" never uses it.
        time_budget_s, iterations, seed: passed to :func:`mixing.fit.fit_params`.
        device: where fitting and rendering run (default :func:`mixing.device.pick_device`).
        renderer: an :class:`IncrementalRenderer` already built over these stems
            trimmed (the worker keeps one per project): its trimmed tracks are
            used and the mix is rendered through it, so that the next edit
            re-processes only what changes. ``MixResult.trim_db`` is then empty.
        auto_start: where "auto" starts, "expert" or "controller" (None:
            :data:`AUTO_START`); the benchmarks set it to compare the two.

    Raises MixingError when a reference is needed and missing, CheckpointError
    (controller), PresetError (``params`` for another number of tracks).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    auto_start = AUTO_START if auto_start is None else auto_start
    if auto_start not in AUTO_STARTS:
        raise ValueError(f"unknown auto start {auto_start!r}; choose from {AUTO_STARTS}")
    if params is not None and method != "auto":
        raise ValueError(f"params are rendered as given; method {method!r} does not apply to them")
    if reference is None and params is None and method != "equal-loudness":
        raise MixingError(f"The {method} mix needs a reference song; without one, only the equal-loudness mix "
                          "or given parameters can be rendered.")
    if params is not None and len(params.tracks) != len(stems.audio):
        raise PresetError(f"the parameters hold {len(params.tracks)} tracks; the session has {len(stems.audio)}")
    match_stereo = True
    if reference is not None:
        match_stereo = carries_stereo(reference)
        reference = as_stereo(reference)
    device = torch.device(device) if device is not None else pick_device()
    sample_rate = stems.sample_rate
    report = _Progress(progress)
    timings_s: dict[str, float] = {}
    warnings = list(stems.warnings)
    fit_result, match_result, trim_db = None, None, []

    if method == "equal-loudness" and params is None:
        target_lufs = (reference_loudness_lufs(reference, sample_rate) if reference is not None
                       else DEFAULT_LOUDNESS_LUFS)
        report("rendering", 0.0, f"equal-loudness mix at {target_lufs:.1f} LUFS")
        with _timed(timings_s, "rendering"):
            audio = equal_loudness_mix(stems.audio, sample_rate, target_lufs)
        ran = "equal-loudness"
    else:
        report("analysing", 0.0, "trimming stems")
        with _timed(timings_s, "analysing"):
            if renderer is None:
                tracks, trim_db = trim_tracks_to_input_level(stems.audio, sample_rate)
                renderer = IncrementalRenderer(tracks, sample_rate, device=device)
            else:
                tracks = renderer.tracks
        if params is not None:
            ran = "params"
        else:
            params, start = _start(stems, tracks, reference, method, checkpoint, device, report, timings_s, warnings,
                                   match_stereo=match_stereo, auto_start=auto_start)
            if method == "controller":
                params.master["master_loudness_lufs"] = reference_loudness_lufs(reference, sample_rate)
                ran = start
            else:
                def fit_progress(event: dict) -> None:
                    report("fitting", event["progress"], f"iteration {event['iteration']}, AF loss {event['loss']:.4f}")

                report("fitting", 0.0, f"up to {iterations} iterations or {time_budget_s} s")
                with _timed(timings_s, "fitting"):
                    fit_result = fit_params(tracks, reference, sample_rate, start=params, iterations=iterations,
                                            time_budget_s=time_budget_s, seed=seed, progress=fit_progress,
                                            device=device, match_stereo=match_stereo)

                def match_progress(event: dict) -> None:
                    report("matching", event["progress"], f"round {event['round']}, AF loss {event['loss']:.4f}")

                report("matching", 0.0, f"rendering {len(tracks)} tracks")
                with _timed(timings_s, "matching"):
                    match_result = match_master(renderer, fit_result.params, reference, match_stereo=match_stereo,
                                                progress=match_progress)
                if not match_stereo:
                    warnings.append("The reference is mono, so it says nothing about width and left/right balance: "
                                    "the mix keeps a stereo image of its own instead of copying one.")
                params = match_result.params
                ran = f"{start}+fit+match"
        if match_result is not None:
            audio = match_result.audio.cpu()
        else:
            report("rendering", 0.0, f"{len(tracks)} tracks")
            with _timed(timings_s, "rendering"):
                audio = renderer.render(params).cpu()

    report("measuring", 0.0, "loudness and true peak")
    with _timed(timings_s, "measuring"):
        loudness_lufs = integrated_loudness_lufs(audio, sample_rate)
        peak_dbtp = true_peak_dbtp(audio, sample_rate)
    report("measuring", 1.0, f"{loudness_lufs:.1f} LUFS, {peak_dbtp:.1f} dBTP")
    return MixResult(params, audio, ran, list(stems.names), loudness_lufs, peak_dbtp, timings_s,
                     fit=fit_result, match=match_result, warnings=warnings, trim_db=list(trim_db))


@contextmanager
def _timed(timings_s: dict[str, float], stage: str):
    began = time.perf_counter()
    try:
        yield
    finally:
        timings_s[stage] = timings_s.get(stage, 0.0) + time.perf_counter() - began


def _start(stems, tracks, reference, method, checkpoint, device, report, timings_s, warnings, *,
           match_stereo: bool, auto_start: str) -> tuple[MixParams, str]:
    """The starting parameters and where they came from ("controller" or "expert+balance")."""
    model = None
    if method == "controller" or (method == "auto" and auto_start == "controller"):
        model = _controller_or_none(checkpoint, device, required=method == "controller", warnings=warnings)
    source = "controller" if model is not None else "expert+balance"
    report("predicting", 0.0, f"{source} start")
    with _timed(timings_s, "predicting"):
        if model is not None:
            return predict_start(model, tracks, reference, stems.sample_rate), source
        params = starting_params(tracks, stems.sample_rate, stems.names)
        report("predicting", 0.3, "levels and pans from the reference's spectra")
        params, _ = balance_to_reference(params, tracks, reference, stems.sample_rate, match_stereo=match_stereo,
                                         device=device)
    return params, source


def _controller_or_none(checkpoint, device, *, required: bool, warnings: list[str]) -> torch.nn.Module | None:
    """The controller, or None when there is none to use (``required`` turns that into CheckpointError)."""
    if isinstance(checkpoint, torch.nn.Module):
        return checkpoint.to(device)
    if checkpoint is None:
        if required:
            raise CheckpointError("No controller checkpoint was given; use the auto or fit method.")
        return None
    if not Path(checkpoint).exists():
        if required:
            raise CheckpointError(f"No controller checkpoint is installed (expected {checkpoint}); "
                                  "use the auto or fit method, or train one.")
        logger.info("no controller checkpoint at %s; starting from the expert mix", checkpoint)
        return None
    try:
        return load_controller(checkpoint, device)
    except CheckpointError as error:
        if required:
            raise
        logger.warning("controller unusable, starting from the expert mix: %s", error)
        warnings.append(f"The trained controller could not be used ({error}); the mix started from expert settings.")
        return None
