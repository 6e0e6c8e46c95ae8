"""Training data: folders of multitrack sessions and of reference songs, sampled in high-energy windows.

Following seed 002, section 3.1: a window is usable when the mean energy of
its mix is at least :data:`mixing.excerpts.MIN_MEAN_ENERGY` (scored, as in
:mod:`mixing.excerpts`, after bringing the whole signal to
:data:`mixing.excerpts.SCORING_RMS_DB`, so the threshold means the same for a
quiet raw session and a mastered song); tracks that are silent in the window
are left out; each example takes a random number of tracks within a range.

Stems get the console's input trim (whole file to
:data:`mixing.params.TRACK_INPUT_LUFS`), exactly as at inference, so the
controller sees tracks at the level the console expects. Audio is indexed once
(loudness and a 100 ms energy envelope per file) and windows are read from disk
on demand, so a folder far larger than memory can be used.

Files must be readable by soundfile at :data:`mixing.SAMPLE_RATE` (WAV, FLAC,
...; mixing.datagen writes such sessions). Convert others first, e.g. with
``ffmpeg -i song.mp3 -ar 44100 song.wav``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mixing import SAMPLE_RATE
from mixing.audio.names import SOUNDFILE_EXTENSIONS
from mixing.controller.model import REFERENCE_INPUT_LUFS
from mixing.errors import MixingError, StemError
from mixing.excerpts import MIN_MEAN_ENERGY, SCORING_RMS_DB
from mixing.loudness import MAX_TRIM_GAIN_DB, integrated_loudness_lufs, normalize_to_lufs
from mixing.params import TRACK_INPUT_LUFS

BLOCK_S = 0.1
# A track counts as playing in a window when its level there is within this of its whole-file level.
ACTIVE_TRACK_DROP_DB = 30.0
# Random window draws before settling for the most energetic window.
_WINDOW_TRIES = 20


@dataclass(frozen=True)
class _AudioFile:
    """One indexed file: trim gain and block energies of the trimmed mono signal."""

    path: Path
    channels: int
    frames: int
    gain: float  # linear input trim
    block_power: np.ndarray  # (blocks,) mean square per BLOCK_S block, after the trim

    def read(self, start: int, samples: int) -> torch.Tensor:
        """(channels, samples) float32, trimmed; zero-padded past the end of the file."""
        data, _ = sf.read(self.path, start=start, frames=samples, dtype="float32", always_2d=True)
        audio = torch.from_numpy(np.ascontiguousarray(data.T)) * self.gain
        if audio.shape[-1] < samples:
            audio = torch.nn.functional.pad(audio, (0, samples - audio.shape[-1]))
        return audio


def _index_file(path: Path, *, target_lufs: float | None) -> _AudioFile:
    try:
        info = sf.info(str(path))
    except RuntimeError as exc:
        raise StemError(path.name, f"soundfile cannot read it ({exc}); convert it to 44.1 kHz WAV") from exc
    if info.samplerate != SAMPLE_RATE:
        raise StemError(path.name, f"sampled at {info.samplerate} Hz; training reads {SAMPLE_RATE} Hz files "
                                   "(resample first)")
    if info.channels not in (1, 2):
        raise StemError(path.name, f"has {info.channels} channels; expected 1 or 2")
    data, _ = sf.read(path, dtype="float32", always_2d=True)
    audio = data.T
    gain = 1.0
    if target_lufs is not None:
        loudness = integrated_loudness_lufs(audio, SAMPLE_RATE)
        if math.isfinite(loudness):
            gain = 10.0 ** (min(target_lufs - loudness, MAX_TRIM_GAIN_DB) / 20.0)
    block = round(BLOCK_S * SAMPLE_RATE)
    blocks = audio.shape[-1] // block
    mono = audio[:, : blocks * block].mean(axis=0) * gain
    block_power = np.square(mono, dtype=np.float64).reshape(blocks, block).mean(axis=1)
    return _AudioFile(path, info.channels, info.frames, gain, block_power)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SOUNDFILE_EXTENSIONS)


def _window_blocks(samples: int) -> int:
    return max(1, math.ceil(samples / (BLOCK_S * SAMPLE_RATE)))


def _pick_window(mix_power: np.ndarray, samples: int, frames: int, rng: np.random.Generator) -> int:
    """Start sample of a random window whose scored mean energy reaches MIN_MEAN_ENERGY.

    After a few misses the most energetic window is taken, so a quiet file still yields examples.
    """
    width = _window_blocks(samples)
    if len(mix_power) <= width:
        return 0
    last_start = max(0, min(len(mix_power) - width, (frames - samples) // round(BLOCK_S * SAMPLE_RATE)))
    scale = 10.0 ** (SCORING_RMS_DB / 10.0) / max(float(mix_power.mean()), 1e-20)
    cumulative = np.concatenate([[0.0], np.cumsum(mix_power)])
    energy = (cumulative[width : width + last_start + 1] - cumulative[: last_start + 1]) / width * scale
    for _ in range(_WINDOW_TRIES):
        start_block = int(rng.integers(0, last_start + 1))
        if energy[start_block] >= MIN_MEAN_ENERGY:
            break
    else:
        start_block = int(np.argmax(energy))
    return start_block * round(BLOCK_S * SAMPLE_RATE)


class SessionFolder:
    """A folder of multitrack sessions: every sub-folder with audio files is one session.

    Stems of a session must have the same length (mixing.datagen writes them so).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MixingError(f"session folder not found: {self.root}")
        self.sessions: list[list[_AudioFile]] = []
        self.names: list[str] = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = _audio_files(folder)
            if not files:
                continue
            stems = [_index_file(path, target_lufs=TRACK_INPUT_LUFS) for path in files]
            lengths = {stem.frames for stem in stems}
            if len(lengths) != 1:
                raise MixingError(f"{folder.name}: stems differ in length ({sorted(lengths)} samples)")
            self.sessions.append(stems)
            self.names.append(folder.name)
        if not self.sessions:
            raise MixingError(f"{self.root} holds no session folders with audio files")

    def __len__(self) -> int:
        return len(self.sessions)

    def sample(
        self,
        rng: np.random.Generator,
        *,
        samples: int,
        track_range: tuple[int, int],
        parts: int = 1,
    ) -> list[torch.Tensor]:
        """Trimmed tracks of a random session in a random high-energy window: each (channels, samples).

        The window is split into ``parts`` equal parts and only tracks playing in
        every part are kept; of those, a random number within ``track_range``
        (inclusive, capped by what plays) is taken in random order. Sessions
        where too few tracks play are passed over.
        """
        min_tracks, max_tracks = track_range
        if not 1 <= min_tracks <= max_tracks:
            raise ValueError(f"track_range must be (low, high) with 1 <= low <= high, got {track_range}")
        for _ in range(_WINDOW_TRIES):
            stems = self.sessions[int(rng.integers(len(self.sessions)))]
            frames = stems[0].frames
            mix_power = sum(stem.block_power for stem in stems)
            start = _pick_window(mix_power, samples, frames, rng)
            playing = [stem for stem in stems if _plays_in_every_part(stem, start, samples, parts)]
            if len(playing) < min_tracks:
                continue
            count = int(rng.integers(min_tracks, min(max_tracks, len(playing)) + 1))
            chosen = [playing[i] for i in rng.permutation(len(playing))[:count]]
            return [stem.read(start, samples) for stem in chosen]
        raise MixingError(f"no window of {samples} samples in {self.root} has {min_tracks} playing tracks")


def _plays_in_every_part(stem: _AudioFile, start: int, samples: int, parts: int) -> bool:
    block = round(BLOCK_S * SAMPLE_RATE)
    level = max(float(stem.block_power.mean()), 1e-20)
    threshold = level * 10.0 ** (-ACTIVE_TRACK_DROP_DB / 10.0)
    part_samples = samples // parts
    for part in range(parts):
        first = (start + part * part_samples) // block
        last = max(first + 1, (start + (part + 1) * part_samples) // block)
        segment = stem.block_power[first:last]
        if segment.size == 0 or float(segment.mean()) < threshold:
            return False
    return True


class ReferenceFolder:
    """A folder of reference songs (audio files, mono or stereo; mono is used on both channels)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MixingError(f"reference folder not found: {self.root}")
        self.songs = [_index_file(path, target_lufs=None) for path in _audio_files(self.root)]
        if not self.songs:
            raise MixingError(f"{self.root} holds no audio files")

    def __len__(self) -> int:
        return len(self.songs)

    def sample(self, rng: np.random.Generator, *, samples: int) -> torch.Tensor:
        """A random high-energy window of a random song, (2, samples), at REFERENCE_INPUT_LUFS."""
        song = self.songs[int(rng.integers(len(self.songs)))]
        audio = song.read(_pick_window(song.block_power, samples, song.frames, rng), samples).expand(2, -1)
        return normalize_to_lufs(audio.contiguous(), SAMPLE_RATE, REFERENCE_INPUT_LUFS)[0]
