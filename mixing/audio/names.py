"""File names of stems: which are audio, and the track names shown to users."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import PurePath

# Formats libsndfile reads, plus those decoded by ffmpeg (see mixing.audio.decode).
SOUNDFILE_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".caf", ".ogg", ".oga", ".mp3"})
FFMPEG_EXTENSIONS = frozenset({".m4a", ".aac"})
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS

# "03_", "03 - ", "1.", "12)" before a name, also with an en or em dash. Up to two digits (or
# zero-padded three) so that "808 Kick" keeps its meaning, no dot before a digit so "12.5 Hz Sub"
# does too, and the lookahead keeps a bare "01" from vanishing.
_TRACK_NUMBER = re.compile(r"^(?:0\d{1,2}|\d{1,2})(?:\s*[-\u2013\u2014)]\s*|\s*\.(?!\d)\s*|\s+)(?=\S)")


def is_audio_filename(filename: str) -> bool:
    """True when the extension is one we decode (case-insensitive)."""
    return PurePath(filename).suffix.lower() in AUDIO_EXTENSIONS


def track_name_from_filename(filename: str) -> str:
    """A track name from a file name: ``"03_Lead Vox.wav"`` -> ``"Lead Vox"``.

    Drops folders, the extension and a leading track number with its separator;
    underscores become spaces and whitespace is collapsed. Digits inside the
    name ("Synth 2") stay.
    """
    stem = PurePath(filename.replace("\\", "/")).stem
    name = " ".join(stem.replace("_", " ").split())
    name = _TRACK_NUMBER.sub("", name)
    return name.strip(" -\u2013\u2014") or "Track"


def _common_words(names: list[list[str]]) -> int:
    """How many leading words all the word lists share, ignoring case."""
    count = 0
    for column in zip(*names, strict=False):
        if len({word.casefold() for word in column}) != 1:
            break
        count += 1
    return count


def track_names_from_filenames(filenames: Sequence[str]) -> list[str]:
    """The track names of one session's files, in order: each as :func:`track_name_from_filename` gives
    it, less the whole words that every name starts or ends with (an export's "Caesium Stem ... mobile":
    ``"6.Caesium_Stem_ALT HATS_mobile.m4a"`` -> ``"ALT HATS"``).

    Every name keeps at least one word, a lone file keeps its whole name, and a name that trimming
    would leave without letters or digits keeps its untrimmed form.
    """
    names = [track_name_from_filename(filename) for filename in filenames]
    if len(names) < 2:
        return names
    words = [name.split() for name in names]
    shortest = min(len(parts) for parts in words)
    prefix = min(_common_words(words), shortest - 1)
    suffix = min(_common_words([parts[::-1] for parts in words]), shortest - 1 - prefix)
    trimmed = []
    for name, parts in zip(names, words, strict=True):
        # A number or separator the prefix hid ("Song 01 - Kick") comes off too.
        short = _TRACK_NUMBER.sub("", " ".join(parts[prefix:len(parts) - suffix])).strip(" -\u2013\u2014")
        trimmed.append(short if any(char.isalnum() for char in short) else name)
    return trimmed


def dedupe_names(names: Iterable[str]) -> list[str]:
    """Make names unique (ignoring case) by numbering repeats: ``["Gtr", "Gtr"]`` -> ``["Gtr", "Gtr (2)"]``."""
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, number = name, 2
        while candidate.casefold() in used:
            candidate, number = f"{name} ({number})", number + 1
        used.add(candidate.casefold())
        unique.append(candidate)
    return unique
