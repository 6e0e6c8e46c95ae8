"""Does a trained controller start fitting from a better place than the expert start?

For every held-out session, the AF loss at matched loudness (the protocol of
:func:`mixing.fit.fit_params`: excerpts of stems and reference, the
reference's loudness as target, features averaged over excerpts) is measured
for three starting points: the console defaults (the equal-loudness mix),
:func:`mixing.expert.starting_params`, and the controller's prediction.
With ``fit_iterations`` the fit is also run from the expert start and from the
prediction, to see whether the better start still matters after fitting.
"""
from __future__ import annotations

from pathlib import Path

import torch

from mixing import SAMPLE_RATE
from mixing.audio.names import track_name_from_filename
from mixing.controller.infer import norm_to_mix_params, predict_params
from mixing.controller.model import REFERENCE_INPUT_LUFS, Controller
from mixing.excerpts import reference_excerpts, stem_excerpts
from mixing.expert import starting_params
from mixing.fit import fit_params
from mixing.loudness import normalize_to_lufs
from mixing.params import MixParams
from mixing.train.data import ReferenceFolder, SessionFolder


def controller_start(
    model: Controller, tracks: list[torch.Tensor], reference: torch.Tensor, *, excerpt_s: float
) -> MixParams:
    """The controller's parameters for trimmed stems (each (channels, samples)) and a reference (2, samples).

    The controller sees the most energetic ``excerpt_s`` window of the stems
    and of the reference (loudness-normalized to REFERENCE_INPUT_LUFS), as in training.
    """
    track_windows, _ = stem_excerpts(tracks, SAMPLE_RATE, count=1, window_s=excerpt_s)
    reference_window = reference_excerpts(reference, SAMPLE_RATE, count=1, window_s=excerpt_s)[0]
    reference_window = normalize_to_lufs(reference_window, SAMPLE_RATE, REFERENCE_INPUT_LUFS)[0]
    first_windows = [window[0] for window in track_windows]
    track_norm, master_norm = predict_params(model, first_windows, reference_window, SAMPLE_RATE)
    return norm_to_mix_params(track_norm, master_norm)


def evaluate_against_expert(
    model: Controller,
    sessions: str | Path,
    references: str | Path,
    *,
    excerpt_s: float = 5.0,
    fit_iterations: int = 0,
) -> list[dict]:
    """AF loss of each start on each held-out session; one dict per session.

    Session ``i`` (in name order) is paired with reference ``(i + 1) mod R``, so
    that when the references were made from the same sessions
    (:func:`~mixing.train.references.make_references`) no session is matched
    to its own mix. Keys: ``session``, ``reference``, ``tracks``,
    ``defaults_af``, ``expert_af``, ``controller_af`` and, with
    ``fit_iterations``, ``expert_fit_af`` and ``controller_fit_af``.
    """
    session_folder = SessionFolder(sessions)
    reference_folder = ReferenceFolder(references)
    rows = []
    for index, (name, stems) in enumerate(zip(session_folder.names, session_folder.sessions, strict=True)):
        song = reference_folder.songs[(index + 1) % len(reference_folder)]
        tracks = [stem.read(0, stem.frames) for stem in stems]
        reference = song.read(0, song.frames).expand(2, -1).contiguous()
        names = [track_name_from_filename(stem.path.name) for stem in stems]
        starts = {
            "defaults": MixParams.default(len(tracks)),
            "expert": starting_params(tracks, SAMPLE_RATE, names),
            "controller": controller_start(model, tracks, reference, excerpt_s=excerpt_s),
        }
        row = {"session": name, "reference": song.path.name, "tracks": len(tracks)}
        for label, start in starts.items():
            measured = fit_params(tracks, reference, SAMPLE_RATE, start=start, iterations=0, time_budget_s=None)
            row[f"{label}_af"] = measured.start_loss
        if fit_iterations:
            for label in ("expert", "controller"):
                result = fit_params(
                    tracks, reference, SAMPLE_RATE, start=starts[label], iterations=fit_iterations, time_budget_s=None
                )
                row[f"{label}_fit_af"] = result.loss
        rows.append(row)
    return rows
