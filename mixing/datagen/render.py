"""Render MIDI parts to audio with the FluidSynth command-line program and a General MIDI SoundFont.

FluidSynth runs as a separate process per stem (``-F`` fast render: as fast as the
CPU allows, no audio device), with reverb and chorus off so the stems come out dry,
and writes 32-bit float so nothing clips before the stem is set to its raw level.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from mixing.errors import MixingError

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SOUNDFONT_ENV = "MIXREF_SOUNDFONT"
# FluidSynth's master gain; its default (0.2) is quiet. Output is float and re-levelled, so only headroom matters.
RENDER_GAIN = 0.5


def find_fluidsynth() -> tuple[str, Path]:
    """The FluidSynth executable and the SoundFont to use (``$MIXREF_SOUNDFONT`` or FluidR3_GM).

    Raises MixingError naming what is missing and the Debian packages that provide it.
    """
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise MixingError("the fluidsynth program was not found on PATH (Debian package: fluidsynth)")
    soundfont = Path(os.environ.get(SOUNDFONT_ENV, DEFAULT_SOUNDFONT))
    if not soundfont.is_file():
        raise MixingError(
            f"SoundFont {soundfont} not found (Debian package: fluid-soundfont-gm, or set {SOUNDFONT_ENV})"
        )
    return binary, soundfont


def render_midi(midi: mido.MidiFile, work_dir: Path, name: str, *, sample_rate: int) -> np.ndarray:
    """Render one MIDI file; returns float32 audio shaped (channels=2, samples).

    ``work_dir`` holds the intermediate .mid and .wav files named after ``name``.
    """
    binary, soundfont = find_fluidsynth()
    midi_path = work_dir / f"{name}.mid"
    wav_path = work_dir / f"{name}.wav"
    midi.save(midi_path)
    command = [
        binary, "-ni", "-q", "-R", "0", "-C", "0", "-g", str(RENDER_GAIN), "-r", str(sample_rate),
        # Load only the samples the part plays: half the start-up time, a quarter of the memory.
        "-o", "synth.dynamic-sample-loading=1",
        "-O", "float", "-T", "wav", "-F", str(wav_path), str(soundfont), str(midi_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not wav_path.is_file():
        raise MixingError(f"fluidsynth failed on {name} (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    audio, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise MixingError(f"fluidsynth wrote {rate} Hz for {name}, asked for {sample_rate} Hz")
    return audio.T


def fit_length(audio: np.ndarray, num_samples: int, *, fade_ms: float = 10.0, sample_rate: int) -> np.ndarray:
    """Trim or zero-pad (channels, samples) audio to ``num_samples``; a short fade-out hides the cut."""
    if audio.shape[-1] >= num_samples:
        out = audio[:, :num_samples].copy()
    else:
        out = np.pad(audio, ((0, 0), (0, num_samples - audio.shape[-1])))
    fade_samples = min(num_samples, int(sample_rate * fade_ms / 1000))
    if fade_samples:
        out[:, -fade_samples:] *= np.linspace(1.0, 0.0, fade_samples, dtype=out.dtype)
    return out


def set_peak(audio: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale audio so its sample peak is ``peak_dbfs``; silence stays silence."""
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0:
        return audio
    return audio * np.float32(10.0 ** (peak_dbfs / 20.0) / peak)
