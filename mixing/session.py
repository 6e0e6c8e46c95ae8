"""The session engine: one song's stems and reference, and what every mix of them shares.

The CLI, the Celery worker and the benchmarks all mix through :class:`MixSession`. It holds the
decoded stems and the reference and makes each of these once, on first use: the trimmed tracks (the
console's input trim to ``TRACK_INPUT_LUFS``), the loudness the mixes are compared at, the
equal-loudness baseline (:mod:`mixing.baseline`), the :class:`~mixing.dsp.console.IncrementalRenderer`
over the trimmed tracks (so that a re-render re-processes only the tracks whose settings changed) and
the measurements of the reference, the baseline and the tracks that every analysis of a mix compares with.

Steps of an automatic mix (:meth:`MixSession.mix`, ``method="auto"``):

1. analysing: trim every stem to ``TRACK_INPUT_LUFS`` (the console's input trim)
   and measure the reference's loudness;
2. predicting: a starting mix, from the expert rules of :mod:`mixing.expert`
   with each track's level and pan read off the reference's long-term spectra
   (:func:`mixing.balance.balance_to_reference`), or from the controller, when
   :data:`mixing.pipeline.AUTO_START` says so and a checkpoint loads;
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
matching), and ``"equal-loudness"`` is the baseline. Given ``params``, the
session is only trimmed and rendered with them (a preset, or a user's edits).

Progress is reported as dicts ``{"stage", "progress", "detail"}`` where
``progress`` is the overall fraction in [0, 1], never decreasing; each stage
covers the span of :data:`mixing.pipeline.STAGE_SPANS`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import torch

from mixing import explain, pipeline
from mixing.analysis import TrackLevelBasis, analyse, measure_signals, measure_signals_and_tracks
from mixing.audio import Stems, load_stems, save_audio
from mixing.balance import balance_to_reference, pin_levels
from mixing.baseline import equal_loudness_mix
from mixing.device import pick_device
from mixing.dsp.console import IncrementalRenderer
from mixing.dsp.limiter import true_peak_dbtp
from mixing.dsp.pan import pan_gains
from mixing.errors import CheckpointError, MixingError, PresetError
from mixing.expert import starting_params
from mixing.features import carries_stereo
from mixing.fit import DEFAULT_TIME_BUDGET_S, fit_params, reference_loudness_lufs
from mixing.loudness import integrated_loudness_lufs, trim_tracks_in_place, trim_tracks_to_input_level
from mixing.master_match import match_master
from mixing.params import MixParams
from mixing.tone.family import family_from_name, stem_family
from mixing.tone.stage import ToneStage

logger = logging.getLogger(__name__)

# Export formats by name: (soundfile format, subtype).
EXPORT_FORMATS = {
    "wav24": ("wav", "PCM_24"),
    "wav16": ("wav", "PCM_16"),
    "float": ("wav", "FLOAT"),
    "flac": ("flac", "PCM_24"),
}


class MixSession:
    """One song's stems and reference, with the trimmed tracks, baseline, renderer and reference
    measurements made once each, on first use, and shared by every mix, render and analysis of it.

    ``stems``: decoded and padded, each (channels, samples) with 1 or 2 channels. ``reference``:
    (channels, samples) with 1 or 2 channels, or None (then only the equal-loudness mix and given
    parameters can be rendered); it is kept as (2, samples). ``device``: where fitting and rendering
    run (default :func:`mixing.device.pick_device`). ``trim_db``: the input trim of each stem in dB,
    when it is known already (a part of a song trimmed as the whole song was); default: measured,
    :func:`mixing.loudness.trim_tracks_to_input_level`. ``reference_features``: what
    :meth:`reference_features` kept of a reference whose audio is gone; with it and no ``reference``, renders
    and analyses work as before (an automatic mix needs the audio). ``trim_in_place``: the session owns the stems'
    audio, so the input trim scales it in place and the song is held once, not beside a trimmed copy (afterwards
    ``stems.audio`` holds the trimmed tracks); :meth:`from_files` does so.
    """

    def __init__(self, stems: Stems, reference: torch.Tensor | None = None, *,
                 device: torch.device | str | None = None, trim_db: Sequence[float] | None = None,
                 reference_features: dict | None = None, trim_in_place: bool = False):
        if trim_db is not None and len(trim_db) != len(stems.audio):
            raise ValueError(f"trim_db: {len(trim_db)} trims for {len(stems.audio)} stems")
        self.stems = stems
        self.sample_rate = stems.sample_rate
        # Whether the reference says anything about width and balance: a mono file, or one copied to
        # both channels, does not; asked before it is made stereo.
        self.match_stereo = reference is None or carries_stereo(reference)
        self.reference = pipeline.as_stereo(reference) if reference is not None else None
        self.device = torch.device(device) if device is not None else pick_device()
        self._given_trim_db = list(trim_db) if trim_db is not None else None
        self._trim_in_place = trim_in_place
        self._compared: tuple[dict[str, dict], list[TrackLevelBasis]] | None = None
        # mixing.explain's gain reductions by track and strip settings: a re-render reads the unchanged ones.
        self._gain_reductions: dict = {}
        self._kept_reference = reference_features if reference is None else None
        if self._kept_reference is not None:
            self.match_stereo = self._kept_reference["match_stereo"]

    @classmethod
    def from_files(cls, stem_paths: Sequence[str | os.PathLike], reference_path: str | os.PathLike | None = None, *,
                   filenames: Sequence[str] | None = None, names: Sequence[str] | None = None,
                   reference_name: str | None = None, max_duration_s: float | None = None,
                   device: torch.device | str | None = None, reference_features: dict | None = None) -> MixSession:
        """Decode stems and the optional reference into a session.

        ``filenames``, ``names``, ``max_duration_s``: as :func:`mixing.audio.load_stems` takes them (default
        its own limit); ``reference_name``: the reference's name in errors. Raises StemsRejected,
        SessionError, StemError.
        """
        limits = {"max_duration_s": max_duration_s} if max_duration_s is not None else {}
        stems = load_stems(stem_paths, filenames=filenames, names=names, **limits)
        reference = (pipeline.load_reference(reference_path, name=reference_name, sample_rate_hz=stems.sample_rate)
                     if reference_path is not None else None)
        return cls(stems, reference, device=device, reference_features=reference_features, trim_in_place=True)

    @cached_property
    def _trimmed(self) -> tuple[list[torch.Tensor], list[float], list[float] | None]:
        """The trimmed tracks, the trim of each in dB and, when measured here, each track's loudness after it."""
        if self._trim_in_place:
            _ = self.silent  # judged on the stems as decoded, before their audio is scaled
        if self._given_trim_db is None and self._trim_in_place:
            trim_db, loudness_lufs = trim_tracks_in_place(self.stems.audio, self.sample_rate)
            return self.stems.audio, trim_db, loudness_lufs
        if self._given_trim_db is None:
            tracks, trim_db = trim_tracks_to_input_level(self.stems.audio, self.sample_rate)
            return tracks, trim_db, None
        # The same gain expression as the trim itself, so a known trim gives the same samples.
        gains = [10.0 ** (gain_db / 20.0) for gain_db in self._given_trim_db]
        if self._trim_in_place:
            for audio, gain in zip(self.stems.audio, gains, strict=True):
                if gain != 1.0:
                    audio.mul_(gain)
            return self.stems.audio, list(self._given_trim_db), None
        tracks = [audio * gain for audio, gain in zip(self.stems.audio, gains, strict=True)]
        return tracks, list(self._given_trim_db), None

    @property
    def tracks(self) -> list[torch.Tensor]:
        """The trimmed stems, each (channels, samples), on the CPU."""
        return self._trimmed[0]

    @property
    def trim_db(self) -> list[float]:
        """The input trim applied to each stem, in dB."""
        return list(self._trimmed[1])

    @cached_property
    def renderer(self) -> IncrementalRenderer:
        """The console over :attr:`tracks` on :attr:`device`, remembering what it last processed, with
        :attr:`tone` as its neural tone stage."""
        return IncrementalRenderer(self.tracks, self.sample_rate, device=self.device, tone=self.tone)

    @cached_property
    def tone(self) -> ToneStage:
        """The tracks' neural tone stage (:mod:`mixing.tone.stage`); their families as :meth:`set_families` last
        set them, until then what each stem's name says, else (when the stage is first on for it) its sound."""
        return ToneStage([family_from_name(name) for name in self.stems.names], guess=self._family_guess)

    def _family_guess(self, index: int) -> str:
        return stem_family(self.stems.names[index], self.stems.audio[index].numpy(), self.sample_rate)

    def set_families(self, families: Sequence[str | None]) -> list[str]:
        """Each track's family for the tone stage: the given ones, and for a None the guess from the stem's name,
        else its sound (:func:`mixing.tone.family.stem_family`). Returns the families now in use; a track whose
        family changed gets its model's output made anew when next rendered with the stage on."""
        if len(families) != len(self.stems.audio):
            raise ValueError(f"families: {len(families)} families for {len(self.stems.audio)} stems")
        chosen = [family if family is not None else self._family_guess(index) for index, family in enumerate(families)]
        self.tone.set_families(chosen)
        return chosen

    @cached_property
    def target_loudness_lufs(self) -> float:
        """The loudness mixes are compared at: the reference's, clamped into the schema's master loudness range,
        or :data:`mixing.pipeline.DEFAULT_LOUDNESS_LUFS` without a reference."""
        if self._kept_reference is not None:
            return self._kept_reference["target_loudness_lufs"]
        if self.reference is None:
            return pipeline.DEFAULT_LOUDNESS_LUFS
        return reference_loudness_lufs(self.reference, self.sample_rate)

    def forget_reference_audio(self) -> None:
        """Drop the reference's audio, keeping :meth:`reference_features`: renders and analyses go on as before."""
        if self.reference is not None:
            self._kept_reference = self.reference_features()
            self.reference = None

    def reference_features(self) -> dict:
        """What renders and analyses read of the reference, to keep when its audio is deleted: its measurements
        (:func:`mixing.analysis.measure_signals`, tensors included: save with ``torch.save``), the loudness mixes
        are compared at, and whether it carries stereo. Raises MixingError without a reference."""
        if self._kept_reference is not None:
            return self._kept_reference
        if self.reference is None:
            raise MixingError("This session has no reference to keep the features of.")
        measured = (self._compared[0]["reference"] if self._compared is not None
                    else measure_signals({"reference": self.reference}, self.sample_rate)["reference"])
        return {"measured": measured, "target_loudness_lufs": self.target_loudness_lufs,
                "match_stereo": self.match_stereo, "sample_rate": self.sample_rate}

    @cached_property
    def silent(self) -> list[bool]:
        """Whether each stem is silent (:attr:`mixing.audio.Stems.silent`): such a track is kept, with the
        schema's defaults, and left out of every mix, render and baseline."""
        return self.stems.silent

    @cached_property
    def baseline(self) -> torch.Tensor:
        """The equal-loudness mix of the stems that sound, at :attr:`target_loudness_lufs`: float32 (2, samples).
        Made from the trimmed tracks (each is brought to one loudness, so the trim changes nothing), with the
        loudness the trim measured."""
        sounding = [index for index, silent in enumerate(self.silent) if not silent]
        if not sounding:
            return torch.zeros(2, self.stems.audio[0].shape[-1])
        loudness_lufs = self._trimmed[2]
        return equal_loudness_mix([self.tracks[i] for i in sounding], self.sample_rate, self.target_loudness_lufs,
                                  loudness_lufs=None if loudness_lufs is None else [loudness_lufs[i] for i in sounding])

    def mix(
        self,
        *,
        method: str = "auto",
        params: MixParams | None = None,
        checkpoint: str | os.PathLike | torch.nn.Module | None = pipeline.DEFAULT_CHECKPOINT,
        time_budget_s: float | None = DEFAULT_TIME_BUDGET_S,
        iterations: int = 150,
        seed: int = 0,
        progress: pipeline.ProgressCallback | None = None,
        auto_start: str | None = None,
        track_names: Sequence[str] | None = None,
    ) -> pipeline.MixResult:
        """Mix the stems toward the reference (see the module docstring for the steps of each method).

        Args:
            method: one of :data:`mixing.pipeline.METHODS`. Must stay "auto" when ``params`` are given.
            params: render these parameters as they are (one track dict per stem).
            checkpoint: the controller: a checkpoint path (loaded once per process, see
                :func:`mixing.pipeline.load_controller`), an already loaded model, or None. Without a
                usable one, "auto" starts from the expert rules (a damaged file adds a warning) and
                "controller" raises CheckpointError. "fit" never uses it.
            time_budget_s, iterations, seed: passed to :func:`mixing.fit.fit_params`.
            auto_start: where "auto" starts, "expert" or "controller" (None: :data:`mixing.pipeline.AUTO_START`).
            track_names: the tracks' names for the expert start and the result (default the stems' names).

        The mix is rendered through :attr:`renderer`, so that the next :meth:`render` re-processes only what
        changes. Raises MixingError when a reference is needed and missing, CheckpointError (controller),
        PresetError (``params`` for another number of tracks).
        """
        if method not in pipeline.METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {pipeline.METHODS}")
        # Read when called, not imported: the module's setting is the one to follow.
        auto_start = pipeline.AUTO_START if auto_start is None else auto_start
        if auto_start not in pipeline.AUTO_STARTS:
            raise ValueError(f"unknown auto start {auto_start!r}; choose from {pipeline.AUTO_STARTS}")
        if params is not None and method != "auto":
            raise ValueError(f"params are rendered as given; method {method!r} does not apply to them")
        if self.reference is None and params is None and method != "equal-loudness":
            raise MixingError(f"The {method} mix needs a reference song; without one, only the equal-loudness mix "
                              "or given parameters can be rendered.")
        if params is not None and len(params.tracks) != len(self.stems.audio):
            raise PresetError(f"the parameters hold {len(params.tracks)} tracks; the session has "
                              f"{len(self.stems.audio)}")
        names = list(track_names) if track_names is not None else list(self.stems.names)
        if params is None and method != "equal-loudness" and any(self.silent):
            return self._mix_sounding(names, method=method, checkpoint=checkpoint, time_budget_s=time_budget_s,
                                      iterations=iterations, seed=seed, progress=progress, auto_start=auto_start)
        reference, sample_rate = self.reference, self.sample_rate
        report = pipeline.StageProgress(progress)
        timings_s: dict[str, float] = {}
        warnings = list(self.stems.warnings)
        fit_result, match_result, trim_db = None, None, []

        if method == "equal-loudness" and params is None:
            report("rendering", 0.0, f"equal-loudness mix at {self.target_loudness_lufs:.1f} LUFS")
            with _timed(timings_s, "rendering"):
                audio = self.baseline
            ran = "equal-loudness"
        else:
            report("analysing", 0.0, "trimming stems")
            with _timed(timings_s, "analysing"):
                tracks, trim_db, renderer = self.tracks, self.trim_db, self.renderer
            if params is not None:
                ran = "params"
            else:
                params, start, measured_db = self._start(names, method, checkpoint, report, timings_s, warnings,
                                                         auto_start=auto_start)
                if method == "controller":
                    params.master["master_loudness_lufs"] = self.target_loudness_lufs
                    ran = start
                else:
                    def fit_progress(event: dict) -> None:
                        report("fitting", event["progress"],
                               f"iteration {event['iteration']}, AF loss {event['loss']:.4f}")

                    report("fitting", 0.0, f"up to {iterations} iterations or {time_budget_s} s")
                    with _timed(timings_s, "fitting"):
                        fit_result = fit_params(tracks, reference, sample_rate, start=params, iterations=iterations,
                                                time_budget_s=time_budget_s, seed=seed, progress=fit_progress,
                                                device=self.device, match_stereo=self.match_stereo,
                                                fixed_track_params=("gain_db", "pan_pct") if measured_db else ())
                        fitted = fit_result.params
                        if measured_db:
                            fitted = pin_levels(fitted, tracks, measured_db, sample_rate, device=self.device,
                                                measure_levels_db=self._renderer_levels_db)
                            # The last pass's fader moves: matching's first render does not run those strips again.
                            renderer.follow_fader_moves(fitted)

                    def match_progress(event: dict) -> None:
                        report("matching", event["progress"], f"round {event['round']}, AF loss {event['loss']:.4f}")

                    report("matching", 0.0, f"rendering {len(tracks)} tracks")
                    with _timed(timings_s, "matching"):
                        match_result = match_master(renderer, fitted, reference,
                                                    match_stereo=self.match_stereo, progress=match_progress)
                    if not self.match_stereo:
                        warnings.append("The reference is mono, so it says nothing about width and left/right "
                                        "balance: the mix keeps a stereo image of its own instead of copying one.")
                    params = match_result.params
                    ran = f"{start}+fit+match"
            if match_result is not None:
                audio = match_result.audio.cpu()
            else:
                report("rendering", 0.0, f"{len(tracks)} tracks")
                with _timed(timings_s, "rendering"):
                    audio = self.render(params)

        report("measuring", 0.0, "loudness and true peak")
        with _timed(timings_s, "measuring"):
            loudness_lufs = integrated_loudness_lufs(audio, sample_rate)
            peak_dbtp = true_peak_dbtp(audio, sample_rate)
        report("measuring", 1.0, f"{loudness_lufs:.1f} LUFS, {peak_dbtp:.1f} dBTP")
        return pipeline.MixResult(params, audio, ran, names, loudness_lufs, peak_dbtp, timings_s,
                                  fit=fit_result, match=match_result, warnings=warnings, trim_db=trim_db)

    def _mix_sounding(self, names: list[str], **options) -> pipeline.MixResult:
        """:meth:`mix` of the stems that sound, by a session of those alone, so that no step of the automatic
        mix (start, balance, fit, matching) weighs a silent track; the silent tracks get the schema's defaults
        and stay out of the mix."""
        sounding = [index for index, silent in enumerate(self.silent) if not silent]
        if not sounding:
            raise MixingError("Every stem is silent: there is nothing to mix.")
        peaks = self.stems.peak_dbfs
        # The trimmed tracks themselves, under a trim of 0 dB: no copy of them is made.
        stems = Stems([self.stems.names[i] for i in sounding], [self.tracks[i] for i in sounding],
                      self.sample_rate, [], None if peaks is None else [peaks[i] for i in sounding])
        session = MixSession(stems, self.reference, device=self.device, trim_db=[0.0] * len(sounding),
                             trim_in_place=True)
        session.match_stereo = self.match_stereo  # the reference as given, not as made stereo
        result = session.mix(track_names=[names[i] for i in sounding], **options)
        params = _with_silent_defaults(result.params, sounding, len(names))
        return dataclasses.replace(result, params=params, track_names=names, trim_db=self.trim_db,
                                   warnings=[*self.stems.warnings, *result.warnings])

    def _start(self, names: list[str], method: str, checkpoint, report: pipeline.StageProgress,
               timings_s: dict[str, float], warnings: list[str], *,
               auto_start: str) -> tuple[MixParams, str, list[float] | None]:
        """The starting parameters, where they came from ("controller" or "expert+balance") and the tracks'
        levels measured off a reference time-aligned with the stems (None otherwise;
        :func:`mixing.balance.balance_to_reference`): the fit keeps those faders and pans, and
        :func:`mixing.balance.pin_levels` restores the levels after it."""
        model = None
        if method == "controller" or (method == "auto" and auto_start == "controller"):
            model = _controller_or_none(checkpoint, self.device, required=method == "controller", warnings=warnings)
        source = "controller" if model is not None else "expert+balance"
        report("predicting", 0.0, f"{source} start")
        with _timed(timings_s, "predicting"):
            if model is not None:
                return pipeline.predict_start(model, self.tracks, self.reference, self.sample_rate), source, None
            params = starting_params(self.tracks, self.sample_rate, names)
            report("predicting", 0.3, "levels and pans from the reference's spectra")
            params, estimate = balance_to_reference(params, self.tracks, self.reference, self.sample_rate,
                                                    match_stereo=self.match_stereo, device=self.device)
        return params, source, estimate.target_level_db

    def _renderer_levels_db(self, params: MixParams, positions: Sequence[int]) -> list[float]:
        """:func:`mixing.balance.pin_levels`' levels through :attr:`renderer`, which keeps the strips it runs for
        the next render and runs none for a track whose fader and threshold moved together
        (:meth:`~mixing.dsp.console.IncrementalRenderer.follow_fader_moves`)."""
        self.renderer.follow_fader_moves(params)
        levels_db = self.renderer.track_levels(params)
        return [levels_db[index] for index in positions]

    def neutral_params(self, track_names: Sequence[str] | None = None) -> MixParams:
        """The mix the match strength (:mod:`mixing.strength`) moves away from: the expert start of the tracks
        that sound, read off no reference (no reference balance), at :data:`mixing.pipeline.DEFAULT_LOUDNESS_LUFS`;
        silent tracks keep the schema's defaults. ``track_names``: default the stems' names."""
        names = list(track_names) if track_names is not None else list(self.stems.names)
        sounding = [index for index, silent in enumerate(self.silent) if not silent]
        start = starting_params([self.tracks[i] for i in sounding], self.sample_rate, [names[i] for i in sounding])
        params = _with_silent_defaults(start, sounding, len(names))
        params.master["master_loudness_lufs"] = pipeline.DEFAULT_LOUDNESS_LUFS
        return params

    def playing(self, *, muted: Sequence[int] = (), solo: Sequence[int] = ()) -> list[bool]:
        """Whether each track plays with the tracks ``muted`` and ``solo`` (indices): as on a console, with any
        track soloed only the soloed tracks play, and mute still silences a soloed track; a silent stem never
        plays."""
        return [(not solo or index in solo) and index not in muted and not silent
                for index, silent in enumerate(self.silent)]

    def render(self, params: MixParams, *, muted: Sequence[int] = (), solo: Sequence[int] = ()) -> torch.Tensor:
        """The mix under ``params`` of the tracks :meth:`playing` with ``muted`` and ``solo`` (track indices),
        through :attr:`renderer`: float32 (2, samples) on the CPU."""
        return self.renderer.render(params, active=self.playing(muted=muted, solo=solo)).cpu()

    def analyse(self, audio: torch.Tensor, params: MixParams | None = None, *,
                track_names: Sequence[str] | None = None, track_ids: Sequence[str] | None = None) -> dict:
        """The Analysis object (:func:`mixing.analysis.analyse`) of the mix ``audio`` (2, samples) against the
        reference and the baseline, with each track's level after its fader in ``params`` (0 dB without).

        The reference, the baseline and the trimmed tracks are measured with the first mix analysed and
        kept, so a later analysis measures only its own mix. ``track_names`` (default the stems' names) and
        ``track_ids`` (default the track's index) label the track levels. Raises MixingError without a reference.
        """
        if self.reference is None and self._kept_reference is None:
            raise MixingError("A mix is analysed against a reference song; this session has none.")
        if self._compared is None and self._kept_reference is not None:
            measured, bases = measure_signals_and_tracks({"mix": audio, "baseline": self.baseline}, self.tracks,
                                                         self.sample_rate)
            measured["reference"] = self._kept_reference["measured"]
            self._compared = ({name: measured[name] for name in ("reference", "baseline")}, bases)
        elif self._compared is None:
            # The mix with the others: one thread pool keeps every core busy where the reference and
            # baseline alone would leave some idle for the mix afterwards.
            measured, bases = measure_signals_and_tracks(
                {"mix": audio, "reference": self.reference, "baseline": self.baseline}, self.tracks,
                self.sample_rate)
            self._compared = ({name: measured[name] for name in ("reference", "baseline")}, bases)
        else:
            measured, bases = self._compared[0], self._compared[1]
        gains_db = ([values["gain_db"] for values in params.tracks] if params is not None
                    else [0.0] * len(self.stems.audio))
        return analyse(audio, self.reference, self.sample_rate, baseline=self.baseline, tracks=bases,
                       track_gains_db=gains_db, track_names=track_names or list(self.stems.names),
                       track_ids=track_ids, measured=measured)

    def export(self, files: Sequence[tuple[torch.Tensor, str | os.PathLike, str]]) -> list[Path]:
        """Writes each ``(audio, path, format_name)``: audio (channels, samples) at the session's sample rate,
        ``format_name`` one of :data:`EXPORT_FORMATS`. Returns the paths written, in order."""
        unknown = sorted({name for _, _, name in files} - set(EXPORT_FORMATS))
        if unknown:
            raise ValueError(f"unknown export format {unknown[0]!r}; choose from {tuple(EXPORT_FORMATS)}")

        def write(file: tuple[torch.Tensor, str | os.PathLike, str]) -> Path:
            audio, path, name = file
            audio_format, subtype = EXPORT_FORMATS[name]
            return save_audio(path, audio, self.sample_rate, format=audio_format, subtype=subtype)

        # Quantizing and libsndfile's encoding release the GIL: the files are encoded side by side.
        with ThreadPoolExecutor(max_workers=max(len(files), 1)) as pool:
            return list(pool.map(write, files))

    def explain(self, params: MixParams, analysis: dict, *, muted: Sequence[int] = (), solo: Sequence[int] = (),
                track_names: Sequence[str] | None = None) -> dict:
        """What the mix under ``params`` did (:mod:`mixing.explain`), JSON-ready: ``eq_freqs_hz`` (points,),
        ``duration_s`` (the time the gain reductions span),
        ``tracks`` (each track's EQ curve in dB at those frequencies, its compressor's gain reduction over time,
        pan and level, with the tracks :meth:`playing` under ``muted`` and ``solo`` as the mix) and ``master``
        (its EQ curve, match EQ and widths per band against the reference's mid and side spectra, read from
        ``analysis``, this mix's :meth:`analyse`)."""
        tracks = explain.track_explanations(self.renderer, params, self.playing(muted=muted, solo=solo),
                                            names=track_names or list(self.stems.names), cache=self._gain_reductions)
        return {"eq_freqs_hz": [round(float(f), 1) for f in explain.eq_curve_freqs_hz(self.sample_rate)],
                "duration_s": self.renderer.samples / self.sample_rate,
                "tracks": tracks, "master": explain.master_explanation(params.master, analysis["features"],
                                                                       self.sample_rate)}

    def processed_stems(self, params: MixParams) -> list[torch.Tensor]:
        """Each track after its strip (EQ, compressor, gain) and pan, before the master bus, float32 (2, samples)
        on the CPU, aligned and of one length; a silent stem stays silence. Through :attr:`renderer`, so only
        strips whose settings changed since the last render run."""
        stems = []
        for values, processed, silent in zip(params.tracks, self.renderer.strip_outputs(params), self.silent,
                                             strict=True):
            left, right = pan_gains(torch.tensor([float(values["pan_pct"])]), processed.shape[0])[0].tolist()
            stereo = processed.expand(2, -1) if processed.shape[0] == 1 else processed
            stems.append(torch.zeros(2, self.renderer.samples) if silent
                         else (stereo * torch.tensor([[left], [right]], device=stereo.device)).cpu())
        return stems

    def export_stems_zip(self, params: MixParams, path: str | os.PathLike, *, names: Sequence[str] | None = None,
                         format_name: str = "wav24") -> Path:
        """Writes :meth:`processed_stems` as one ZIP of ``NN Name.wav`` files (``names``: default the stems'),
        at the session's rate in ``format_name`` (one of :data:`EXPORT_FORMATS`). Returns ``path``."""
        names = list(names) if names is not None else list(self.stems.names)
        if len(names) != len(self.stems.audio):
            raise ValueError(f"names: {len(names)} names for {len(self.stems.audio)} stems")
        extension = EXPORT_FORMATS[format_name][0]
        path = Path(path)
        with tempfile.TemporaryDirectory(prefix="mixref-stems-", dir=path.parent) as folder:
            entries = [f"{index + 1:02d} {_safe_entry_name(name)}.{extension}" for index, name in enumerate(names)]
            written = self.export([(audio, Path(folder) / entry, format_name)
                                   for audio, entry in zip(self.processed_stems(params), entries, strict=True)])
            temporary = Path(folder) / "stems.zip"
            # Stored, not deflated: PCM barely shrinks and deflating a long session would take seconds per track.
            with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for file, entry in zip(written, entries, strict=True):
                    archive.write(file, entry)
            os.replace(temporary, path)
        return path


def _safe_entry_name(name: str) -> str:
    """A track name as a ZIP entry's name: no folders, no control characters."""
    cleaned = "".join(c if c.isprintable() and c not in '/\\:*?"<>|' else "_" for c in name).strip(" .")
    return cleaned[:100] or "track"


def _with_silent_defaults(sounding_params: MixParams, sounding: Sequence[int], count: int) -> MixParams:
    """The parameters of ``count`` tracks: ``sounding_params``' rows (a mix of the tracks ``sounding`` alone) at
    those indices, the schema's defaults for the silent ones in between, and its master."""
    params = MixParams.default(count)
    params.master = dict(sounding_params.master)
    for position, index in enumerate(sounding):
        params.tracks[index] = dict(sounding_params.tracks[position])
    return params


@contextmanager
def _timed(timings_s: dict[str, float], stage: str):
    began = time.perf_counter()
    try:
        yield
    finally:
        timings_s[stage] = timings_s.get(stage, 0.0) + time.perf_counter() - began


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
        return pipeline.load_controller(checkpoint, device)
    except CheckpointError as error:
        if required:
            raise
        logger.warning("controller unusable, starting from the expert mix: %s", error)
        warnings.append(f"The trained controller could not be used ({error}); the mix started from expert settings.")
        return None


def mix_session(
    stems: Stems,
    reference: torch.Tensor | None,
    *,
    method: str = "auto",
    params: MixParams | None = None,
    checkpoint: str | os.PathLike | torch.nn.Module | None = pipeline.DEFAULT_CHECKPOINT,
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S,
    iterations: int = 150,
    seed: int = 0,
    progress: pipeline.ProgressCallback | None = None,
    device: torch.device | str | None = None,
    auto_start: str | None = None,
) -> pipeline.MixResult:
    """Mix ``stems`` toward ``reference`` (1 or 2 channels, samples, at ``stems.sample_rate``): a new
    :class:`MixSession` on ``device`` (default :func:`mixing.device.pick_device`), mixed by its
    :meth:`MixSession.mix` with the other arguments."""
    return MixSession(stems, reference, device=device).mix(
        method=method, params=params, checkpoint=checkpoint, time_budget_s=time_budget_s, iterations=iterations,
        seed=seed, progress=progress, auto_start=auto_start)
