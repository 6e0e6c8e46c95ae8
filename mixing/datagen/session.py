"""Write multitrack sessions: composed parts rendered to dry stems at random raw recording levels."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from mixing import SAMPLE_RATE
from mixing.datagen.compose import BEATS_PER_BAR, Part, Song, compose_song, part_to_midi
from mixing.datagen.render import find_fluidsynth, fit_length, render_midi, set_peak
from mixing.errors import MixingError

SESSION_FILE = "session.json"
FORMAT_VERSION = 1
# Raw tracks arrive anywhere from barely recorded to close to clipping.
RAW_PEAK_DBFS_RANGE = (-30.0, -3.0)
# Released notes keep sounding; render past the end so the trim, not the synth, decides the length.
TAIL_S = 1.0


def _stem_file(index: int, name: str) -> str:
    return f"{index + 1:02d}_{name}.wav"


def _render_stem(part: Part, song: Song, work_dir: Path, path: Path, *, peak_dbfs: float, sample_rate: int) -> int:
    """Render, trim, set the level of and write one stem; returns its channel count."""
    plan = song.plan
    end_beats = (song.duration_s + TAIL_S) * plan.tempo_bpm / 60.0
    audio = render_midi(part_to_midi(part, plan, end_beats=end_beats), work_dir, path.stem, sample_rate=sample_rate)
    if not part.stereo:
        audio = audio.mean(axis=0, keepdims=True)
    audio = set_peak(fit_length(audio, round(song.duration_s * sample_rate), sample_rate=sample_rate), peak_dbfs)
    sf.write(path, audio.T, sample_rate, subtype="PCM_24")
    return audio.shape[0]


def generate_session(
    out_dir: Path | str,
    *,
    seed: int,
    duration_s: float,
    num_stems: int = 6,
    sample_rate: int = SAMPLE_RATE,
    session_id: str | None = None,
    workers: int | None = None,
) -> Path:
    """Compose and render one session into ``out_dir/<session_id>/`` (default id ``session_<seed>``).

    The folder holds ``<nn>_<Name>.wav`` stems (24-bit, mono or stereo, all
    ``round(duration_s * sample_rate)`` samples long, each peaking at a random level in
    RAW_PEAK_DBFS_RANGE) and ``session.json`` describing seed, tempo, key, chords,
    sections and stems. The same seed gives the same files. An existing session
    folder of the same id is replaced; ``workers`` FluidSynth processes run at once
    (default: one per CPU core).
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    find_fluidsynth()  # fail before composing if the renderer is missing
    out_dir = Path(out_dir)
    session_id = session_id or f"session_{seed}"
    target = out_dir / session_id
    if target.exists() and not (target / SESSION_FILE).is_file():
        raise MixingError(f"{target} exists and is not a generated session; not replacing it")
    out_dir.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(seed)
    song = compose_song(rng, duration_s=duration_s, num_stems=num_stems)
    peaks_dbfs = np.round(rng.uniform(*RAW_PEAK_DBFS_RANGE, size=len(song.parts)), 2)
    files = [_stem_file(i, part.name) for i, part in enumerate(song.parts)]

    # Build in a hidden sibling and rename, so a crash never leaves a half-written session behind.
    partial = out_dir / f".{session_id}.partial"
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run
    partial.mkdir()
    try:
        with tempfile.TemporaryDirectory() as work, ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            channel_counts = list(pool.map(
                lambda i: _render_stem(song.parts[i], song, Path(work), partial / files[i],
                                       peak_dbfs=float(peaks_dbfs[i]), sample_rate=sample_rate),
                range(len(song.parts)),
            ))
        description = _describe(song, session_id, seed, sample_rate, files, peaks_dbfs, channel_counts)
        (partial / SESSION_FILE).write_text(json.dumps(description, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    return target


def _describe(song: Song, session_id, seed, sample_rate, files, peaks_dbfs, channel_counts) -> dict:
    plan = song.plan
    return {
        "format_version": FORMAT_VERSION,
        "session_id": session_id,
        "seed": int(seed),
        "sample_rate": int(sample_rate),
        "duration_s": float(song.duration_s),
        "num_samples": round(song.duration_s * sample_rate),
        "tempo_bpm": plan.tempo_bpm,
        "key": plan.key_name,
        "chords": [plan.chord_name(d) for d in plan.chord_degrees],
        "chord_beats": plan.chord_beats,
        "sections": [
            {"name": s.name, "start_s": round(plan.seconds(s.start_bar * BEATS_PER_BAR), 3), "bars": s.bars,
             "energy": s.energy}
            for s in plan.sections
            if plan.seconds(s.start_bar * BEATS_PER_BAR) < song.duration_s
        ],
        "stems": [
            {
                "file": file,
                "name": part.name,
                "instrument": part.instrument,
                "program": None if part.is_drums else part.program,
                "channels": channels,
                "peak_dbfs": float(peak),
                "first_note_s": round(plan.seconds(part.notes[0].start_beats), 3),
                "num_notes": len(part.notes),
            }
            for part, file, peak, channels in zip(song.parts, files, peaks_dbfs, channel_counts, strict=True)
        ],
    }


def _matches(session_dir: Path, seed: int, duration_s: float, num_stems: int) -> bool:
    try:
        description = json.loads((session_dir / SESSION_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (description.get("seed") == seed and description.get("duration_s") == float(duration_s)
            and len(description.get("stems", ())) == num_stems)


def generate_sessions(
    out_dir: Path | str,
    count: int,
    *,
    seed: int,
    duration_s: float,
    num_stems_range: tuple[int, int] = (4, 8),
    sample_rate: int = SAMPLE_RATE,
    workers: int | None = None,
    progress: Callable[[dict], None] | None = None,
) -> list[Path]:
    """Generate ``count`` sessions ``session_00000`` ... with seeds and stem counts drawn from ``seed``.

    Stem counts are uniform over ``num_stems_range`` (inclusive). A session already
    on disk with the same seed, duration and stem count is kept, so an interrupted run
    can be restarted. ``progress`` receives ``{"done", "total", "session", "seconds", "skipped"}``
    after each session.
    """
    low, high = num_stems_range
    if not 1 <= low <= high:
        raise ValueError(f"num_stems_range must be (low, high) with 1 <= low <= high, got {num_stems_range}")
    seeds = np.random.SeedSequence(seed).generate_state(count) if count else []
    stem_counts = np.random.default_rng(seed).integers(low, high + 1, size=count)
    paths = []
    for index, (session_seed, num_stems) in enumerate(zip(seeds, stem_counts, strict=True)):
        started = time.perf_counter()
        session_dir = Path(out_dir) / f"session_{index:05d}"
        skipped = _matches(session_dir, int(session_seed), duration_s, int(num_stems))
        if not skipped:
            generate_session(out_dir, seed=int(session_seed), duration_s=duration_s, num_stems=int(num_stems),
                             sample_rate=sample_rate, session_id=session_dir.name, workers=workers)
        paths.append(session_dir)
        if progress is not None:
            progress({"done": index + 1, "total": count, "session": str(session_dir),
                      "seconds": time.perf_counter() - started, "skipped": skipped})
    return paths
