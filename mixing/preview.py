"""The live preview's audio: each track after its strip and before its pan (or, for many tracks, stem groups
after their pans), compressed, so that a page can play a gain, pan or mute change at once through Web Audio
gain and pan nodes while the exact render is made.

The page applies pan with the console's own law (:func:`mixing.dsp.pan.pan_gains`), so at a version's own
settings the sources, each through its pan gains, sum to that version's mix before the master bus
(:meth:`mixing.dsp.console.IncrementalRenderer.bus_sum`); the master bus is not applied in preview.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .params import MixParams
from .tone.family import family_from_name

# Above this many tracks the page would play too many decoders at once: tracks are grouped by family.
PREVIEW_MAX_SOURCES = 16
MANIFEST_NAME = "manifest.json"
# Vorbis at its default quality (about 160 kbit/s stereo): transparent enough to judge a balance.
_FORMAT, _SUBTYPE = "OGG", "VORBIS"
_WRITE_FRAMES = 65536


@dataclass
class PreviewSource:
    """One audio file of a preview: ``tracks`` (indices in stem order) played through it; ``pan_pct`` the pan
    the page applies (None: already panned, a group); ``audio`` (channels, samples) float32."""

    name: str
    tracks: list[int]
    pan_pct: float | None
    audio: torch.Tensor


def preview_sources(session, params: MixParams, names: Sequence[str] | None = None,
                    *, max_sources: int = PREVIEW_MAX_SOURCES) -> list[PreviewSource]:
    """The preview of ``session`` (a :class:`mixing.session.MixSession`) under ``params``: one source per track
    (strip output before pan, 1 or 2 channels) while there are at most ``max_sources`` tracks, else one stereo
    source per family (drums, bass, vocals...: :func:`family_from_name`), each the sum of its tracks after
    their strips and pans. Silent stems stay in, as silence, so that every track has a source."""
    names = list(names) if names is not None else list(session.stems.names)
    if len(names) != len(params.tracks):
        raise ValueError(f"names: {len(names)} names for {len(params.tracks)} tracks")
    if len(names) <= max_sources:
        return [PreviewSource(name, [index], float(values["pan_pct"]), audio.float().cpu())
                for index, (name, values, audio) in enumerate(
                    zip(names, params.tracks, session.renderer.strip_outputs(params), strict=True))]
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        groups.setdefault(family_from_name(name) or "other", []).append(index)
    panned = session.processed_stems(params)
    return [PreviewSource(family, indices, None, torch.stack([panned[index] for index in indices]).sum(0))
            for family, indices in groups.items()]


def preview_manifest(sources: Sequence[PreviewSource], params: MixParams, sample_rate: int) -> dict:
    """What the page needs beside the audio: the rate, each source's file, tracks and pan, and each track's
    rendered gain (the page plays the change from it) and level share within its source."""
    tracks = []
    for source_index, source in enumerate(sources):
        for index in source.tracks:
            tracks.append({"index": index, "source": source_index,
                           "gain_db": float(params.tracks[index]["gain_db"]),
                           "pan_pct": float(params.tracks[index]["pan_pct"])})
    return {
        "sample_rate_hz": sample_rate,
        "grouped": any(source.pan_pct is None for source in sources),
        "sources": [{"name": source.name, "file": _entry(index), "tracks": source.tracks, "pan_pct": source.pan_pct,
                     "channels": int(source.audio.shape[0])} for index, source in enumerate(sources)],
        "tracks": sorted(tracks, key=lambda track: track["index"]),
    }


def _entry(index: int) -> str:
    return f"{index + 1:02d}.ogg"


def encode_ogg(audio: torch.Tensor, sample_rate: int) -> bytes:
    """``audio`` (channels, samples) as Ogg Vorbis at ``sample_rate``; clipped to [-1, 1] first, as any
    fixed-point decoder would."""
    frames = np.clip(audio.detach().cpu().numpy().T, -1.0, 1.0)
    buffer = io.BytesIO()
    # libsndfile's Vorbis encoder crashes (SIGSEGV) on one write of a song's length: write it in blocks.
    with sf.SoundFile(buffer, "w", sample_rate, frames.shape[1], format=_FORMAT, subtype=_SUBTYPE) as file:
        for start in range(0, frames.shape[0], _WRITE_FRAMES):
            file.write(frames[start:start + _WRITE_FRAMES])
    return buffer.getvalue()


def write_preview_zip(session, params: MixParams, path: str | os.PathLike, *,
                      names: Sequence[str] | None = None) -> Path:
    """Writes the preview of ``session`` under ``params`` as one ZIP: ``manifest.json`` and one ``NN.ogg`` per
    source, at the session's rate. Returns ``path``."""
    path = Path(path)
    sources = preview_sources(session, params, names)
    rate = session.sample_rate
    manifest = preview_manifest(sources, params, rate)
    temporary = path.with_name(f"{path.name}.part")
    # Stored: Vorbis does not shrink further.
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr(MANIFEST_NAME, json.dumps(manifest))
        for index, source in enumerate(sources):
            archive.writestr(_entry(index), encode_ogg(source.audio, rate))
    os.replace(temporary, path)
    return path


def read_manifest(archive: zipfile.ZipFile) -> dict:
    return json.loads(archive.read(MANIFEST_NAME))
