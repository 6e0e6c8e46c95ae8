"""Reference songs for training method 2 and for evaluation, made from generated sessions.

Each session is mixed whole with :func:`random_plausible_params`, buried
tracks lifted (:func:`lift_buried_tracks`), by the full-length renderer
(:class:`mixing.dsp.console.IncrementalRenderer`, ceiling included, as a
released song would be) and written as ``<session>.wav`` with its parameters as
``<session>.json`` (a preset), so the ground truth stays known.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from mixing import SAMPLE_RATE
from mixing.audio.io import save_audio
from mixing.audio.names import track_name_from_filename
from mixing.dsp.console import IncrementalRenderer
from mixing.train.data import SessionFolder
from mixing.train.random_params import lift_buried_tracks, random_plausible_params


def make_references(
    sessions: str | Path, out_dir: str | Path, *, seed: int, progress: Callable[[str], None] | None = None
) -> list[Path]:
    """Render every session under ``sessions`` into ``out_dir/<session>.wav`` (stereo, 24-bit).

    The parameters of session ``i`` (in name order) are drawn from a generator
    seeded with ``seed + i``, so the same inputs give the same files.
    Returns the paths of the written songs.
    """
    folder = SessionFolder(sessions)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (name, stems) in enumerate(zip(folder.names, folder.sessions, strict=True)):
        # Reading applies the console's input trim, as the renderer expects.
        tracks = [stem.read(0, stem.frames) for stem in stems]
        renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
        params = lift_buried_tracks(random_plausible_params(len(tracks), torch.Generator().manual_seed(seed + index)),
                                    renderer)
        mix = renderer.render(params)
        path = save_audio(out_dir / f"{name}.wav", mix, SAMPLE_RATE)
        names = [track_name_from_filename(stem.path.name) for stem in stems]
        (out_dir / f"{name}.json").write_text(json.dumps(params.to_preset(names), indent=2) + "\n")
        written.append(path)
        if progress is not None:
            progress(f"[{index + 1}/{len(folder)}] {path}")
    return written
