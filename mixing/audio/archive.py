"""Unpacking an uploaded ZIP of stems into one flat folder, with caps against ZIP bombs.

``zipfile`` already refuses ``../`` and absolute paths but trusts the sizes in
the headers. Here the entry count, the number of audio files and the
uncompressed bytes the central directory declares are all checked before a
single byte is unpacked, and the bytes that actually come out are counted
against the same cap as they are written. The compression ratio is not
judged: a silent stem compresses about 1000:1.
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePath

from mixing.audio.names import is_audio_filename
from mixing.errors import StemError

MAX_ZIP_ENTRIES = 1000
MAX_ZIP_TOTAL_BYTES = 4 * 1024**3
_CHUNK_BYTES = 1 << 20
_MAX_NAME_CHARS = 150
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SkippedEntry:
    """An entry of the archive that was not extracted, with the reason as a sentence."""

    name: str
    reason: str


@dataclass
class ExtractedStems:
    """``paths``: the audio files written, in archive order. ``skipped``: entries left out, with reasons."""

    paths: list[Path]
    skipped: list[SkippedEntry]


def extract_stems_zip(zip_path: str | os.PathLike, dest_dir: str | os.PathLike, *, name: str | None = None,
                      max_entries: int = MAX_ZIP_ENTRIES, max_total_bytes: int = MAX_ZIP_TOTAL_BYTES,
                      max_files: int | None = None) -> ExtractedStems:
    """Extract the audio files of a ZIP into ``dest_dir`` (created if needed), flattening folders.

    Directories, ``__MACOSX`` and hidden files are passed over silently; other
    non-audio, encrypted, linked or corrupt entries are listed in ``skipped``.
    Files with the same name get " (2)", " (3)"... Raises StemError naming the
    archive (``name``, default its file name) when it is not a ZIP, has more
    than ``max_entries`` entries, more than ``max_files`` audio files (None: no
    cap) or unpacks to more than ``max_total_bytes``; files already written by
    this call are then removed.
    """
    name = name or Path(zip_path).name
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise StemError(name, "it is not a valid ZIP archive.") from None
    extracted = ExtractedStems(paths=[], skipped=[])
    try:
        with archive:
            _extract(archive, dest, name, max_entries, max_total_bytes, max_files, extracted)
    except BaseException:
        for path in extracted.paths:
            path.unlink(missing_ok=True)
        raise
    return extracted


def _extract(archive: zipfile.ZipFile, dest: Path, name: str, max_entries: int, max_total_bytes: int,
             max_files: int | None, extracted: ExtractedStems) -> None:
    entries = archive.infolist()
    if len(entries) > max_entries:
        raise StemError(name, f"it holds {len(entries)} entries; the maximum is {max_entries}.")
    wanted = []
    for entry in entries:
        filename = _flat_name(entry.filename)
        if entry.is_dir() or filename is None:
            continue
        reason = _skip_reason(entry, filename)
        if reason:
            extracted.skipped.append(SkippedEntry(entry.filename, reason))
        else:
            wanted.append((entry, filename))
    # Every audio file is decoded in a child process: refuse the archive rather than unpack and decode
    # files that the per-request cap would drop anyway.
    if max_files is not None and len(wanted) > max_files:
        raise StemError(name, f"it holds {len(wanted)} audio files; at most {max_files} can be added at once.")
    too_big = f"it unpacks to more than {_format_megabytes(max_total_bytes)}."
    if sum(entry.file_size for entry, _ in wanted) > max_total_bytes:
        raise StemError(name, too_big)

    dest_resolved = dest.resolve()
    taken = {child.name.casefold() for child in dest.iterdir()}
    total_bytes = 0
    for entry, filename in wanted:
        target = dest / _unique_filename(filename, taken)
        if target.resolve().parent != dest_resolved:
            extracted.skipped.append(SkippedEntry(entry.filename, "its name is not allowed."))
            continue
        try:
            # Opening reads the entry's local header: a bad offset fails its seek (OSError), a name flagged
            # UTF-8 that is not fails to decode (UnicodeDecodeError).
            source = archive.open(entry)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, UnicodeDecodeError) as error:
            reason = ("it uses an unsupported compression method." if isinstance(error, NotImplementedError)
                      else "it is corrupt.")
            extracted.skipped.append(SkippedEntry(entry.filename, reason))
            continue
        try:
            with source, open(target, "xb") as out:
                extracted.paths.append(target)
                # Headers can lie about sizes: count what actually comes out.
                while chunk := source.read(_CHUNK_BYTES):
                    total_bytes += len(chunk)
                    if total_bytes > max_total_bytes:
                        raise StemError(name, too_big)
                    out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError):
            extracted.paths.remove(target)
            target.unlink(missing_ok=True)
            extracted.skipped.append(SkippedEntry(entry.filename, "it is corrupt."))


def _format_megabytes(size_bytes: int) -> str:
    return f"{size_bytes / 1024**2:.0f} MB" if size_bytes >= 1024**2 else f"{size_bytes / 1024:.0f} kB"


def _flat_name(entry_name: str) -> str | None:
    """The entry's file name without folders or control characters; None for macOS metadata and hidden files."""
    parts = re.split(r"[/\\]", entry_name)
    if "__MACOSX" in parts:
        return None
    filename = _CONTROL_CHARACTERS.sub("", parts[-1]).strip()
    if not filename or filename.startswith("."):
        return None
    stem, suffix = os.path.splitext(filename)
    return stem[:_MAX_NAME_CHARS] + suffix[:_MAX_NAME_CHARS]


def _skip_reason(entry: zipfile.ZipInfo, filename: str) -> str | None:
    if filename.lower().endswith(".zip"):
        return "ZIPs inside a ZIP are not unpacked; add its files to the outer ZIP."
    if not is_audio_filename(filename):
        suffix = PurePath(filename).suffix
        return f"it is not an audio file ({suffix or 'no extension'})."
    if stat.S_ISLNK(entry.external_attr >> 16):
        return "it is a symbolic link."
    if entry.flag_bits & 0x1:
        return "it is encrypted."
    return None


def _unique_filename(filename: str, taken: set[str]) -> str:
    """``filename``, or ``stem (2).ext``, ``stem (3).ext``... when taken (case-insensitive); marks it taken."""
    stem, suffix = os.path.splitext(filename)
    candidate, number = filename, 2
    while candidate.casefold() in taken:
        candidate, number = f"{stem} ({number}){suffix}", number + 1
    taken.add(candidate.casefold())
    return candidate
