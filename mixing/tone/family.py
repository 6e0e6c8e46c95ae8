"""Which tone model a stem uses: its instrument family, from the name users give it, else from its spectrum."""
from __future__ import annotations

import re
from itertools import pairwise

import numpy as np

FAMILIES = ("bass", "guitar", "vocal", "keys", "drums")

# Checked in this order: "Bass Drum" is drums, "Synth Bass" bass, "Vox Guitar" guitar (the instrument wins).
_NAME_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple((family, re.compile(pattern, re.IGNORECASE)) for
                                                            family, pattern in (
    ("drums", r"\b(bass ?drum|kick|kik|bd|snare|snr|sd|hi ?hats?|hh|hats?|toms?|crash|ride|cymbals?|overheads?|oh|"
              r"drums?|perc\w*|beats?|breaks?|loop|clap|shaker|tamb\w*|conga|bongo|808)\b"),
    ("bass", r"\b(bass|bs|sub|sy ?bass|synth ?bass|808 ?bass)\b"),
    ("guitar", r"\b(gtrs?|guitars?|gtr\w*|acoustic|banjo|ukulele|uke|dobro|strat|tele)\b"),
    ("vocal", r"\b(vox|vocals?|voc|vo|bg ?vox|bgv\w*|bvs?|lead ?vox|choir|singer|rap|adlibs?|harmony|vox\w*)\b"),
    ("keys", r"\b(keys?|piano|pno|rhodes|wurli\w*|organ|synth\w*|pad|arp|pluck|lead|clav|ep|mellotron|strings?|"
             r"minilogue|moog)\b"),
))


def family_from_name(name: str) -> str | None:
    """The family a track name says, or None: ``"BGVOX 2"`` -> ``"vocal"``, ``"Kick"`` -> ``"drums"``.

    Underscores, dots and digits glued to words count as separators, so ``"Gtr_L"`` and ``"Vox2"`` match.
    """
    words = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])|[_.\-]", " ", name)
    for family, pattern in _NAME_PATTERNS:
        if pattern.search(words):
            return family
    return None


def _band_energy_fractions(audio: np.ndarray, sample_rate: int, edges_hz: tuple[float, ...]) -> np.ndarray:
    """Energy in each band between consecutive ``edges_hz`` of mono ``audio`` (samples,), as fractions."""
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs_hz = np.fft.rfftfreq(audio.shape[-1], 1.0 / sample_rate)
    bands = np.array([spectrum[(freqs_hz >= lo) & (freqs_hz < hi)].sum() for lo, hi in pairwise(edges_hz)])
    total = bands.sum()
    return bands / total if total > 0 else bands


def family_from_spectrum(audio: np.ndarray, sample_rate: int) -> str:
    """A fallback guess from the long-term spectrum and crest of ``audio`` (channels, samples) or (samples,).

    Rules on energy fractions below 250 Hz, 250 Hz-2 kHz, 2-6 kHz and above 6 kHz, and on the peak-to-RMS
    ratio of 50 ms blocks (drums are the most impulsive): a crude classifier, used only when the name says
    nothing.
    """
    mono = np.asarray(audio, dtype=np.float64)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    low, mid, presence, air = _band_energy_fractions(mono, sample_rate, (20.0, 250.0, 2000.0, 6000.0,
                                                                         sample_rate / 2))
    block = max(1, int(0.05 * sample_rate))
    blocks = mono[: mono.shape[-1] // block * block].reshape(-1, block) if mono.shape[-1] >= block else mono[None]
    block_rms = np.sqrt((blocks ** 2).mean(axis=1))
    # Envelope crest: loud blocks far above the median block is what hits do.
    crest_db = 20 * np.log10((block_rms.max() + 1e-12) / (np.median(block_rms) + 1e-12))
    if air > 0.15 or crest_db > 20.0:
        return "drums"
    if low > 0.7:
        return "bass"
    if presence > 0.25:
        return "vocal"
    if mid > 0.6 and low < 0.25:
        return "guitar"
    return "keys"


def stem_family(name: str, audio: np.ndarray, sample_rate: int) -> str:
    """The family from the name, else from the spectrum of ``audio`` (channels, samples)."""
    return family_from_name(name) or family_from_spectrum(audio, sample_rate)
