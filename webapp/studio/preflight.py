"""Stem preflight for the studio: the report (a read: every stem decoded in a child process and scanned by
:mod:`mixing.preflight`) and its one-click fixes (a write: a stem's stored audio rewritten, or the stem deleted).

Its own module rather than a part of selectors.py and services.py because both halves decode audio.
A fixed stem is stored as lossless FLAC (24-bit; a float WAV when it peaks at or over full scale, so nothing
is clipped) at the file's own sample rate, under the file name it had with the new extension; the old file is
deleted once the new one is committed, and nothing changes if any step fails.
"""
import hashlib
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath

import numpy as np
import torch
from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.db import transaction

from mixing import SAMPLE_RATE
from mixing.audio import load_audio
from mixing.audio.decode import decode_isolated
from mixing.audio.io import save_audio
from mixing.errors import StemError
from mixing.preflight import AUDIO_FIXES, apply_fix, findings_from_scans, scan_stem
from webapp.core.errors import ApplicationError

from .models import Project, Stem
from .selectors import reference_or_none, stem_as_dict, stems_ordered
from .services import _inputs_check_unlocked, _project_locked, files_delete_on_commit, stem_delete

logger = logging.getLogger(__name__)

FIXES = (*AUDIO_FIXES, "delete_stem")
FIX_LABELS = {"remove_dc": "Remove the DC offset", "fold_to_mono": "Fold to mono", "delete_stem": "Delete the track"}
# Child decoders at once, as in services.VALIDATE_WORKERS; each stem's audio is dropped once scanned.
DECODE_WORKERS = 4
# A report is kept under the names of the stored files it read: any upload, fix or deletion makes new names.
REPORT_CACHE_S = 3600


def _local_copy(field, folder: Path) -> Path:
    """A copy of a stored file in ``folder``, read through the storage (S3 included), keeping its suffix."""
    local = folder / f"stored{PurePath(field.name).suffix}"
    with field.storage.open(field.name, "rb") as stored, local.open("wb") as copy:
        for chunk in iter(lambda: stored.read(1 << 20), b""):
            copy.write(chunk)
    return local


def _scan(field, filename: str):
    with tempfile.TemporaryDirectory(prefix="mixref-preflight-") as folder:
        audio = load_audio(_local_copy(field, Path(folder)), name=filename,
                           max_duration_s=settings.MIXREF_AUDIO_MAX_DURATION_S)
    return scan_stem(audio, SAMPLE_RATE)


def _unreadable(what: str, error: Exception) -> ApplicationError:
    reason = error.reason if isinstance(error, StemError) else "its stored copy could not be read."
    return ApplicationError(f"{what} could not be checked: {reason}", code="unreadable_stem", status=409)


def project_preflight(*, project: Project) -> dict:
    """The preflight report of a project's stems (and its reference, when there is one): its findings in
    JSON, each naming the stem ids it concerns and the fix it offers, with its button's label. The same
    stored files give the same report, so a page load does not decode a session again."""
    stems = stems_ordered(project=project)
    reference = reference_or_none(project)
    files = [(stem.file, stem.filename) for stem in stems]
    if reference is not None:
        files.append((reference.file, reference.filename))
    read = repr([(str(stem.id), stem.file.name) for stem in stems] + [field.name for field, _ in files])
    key = f"mixref-preflight-{project.pk}-{hashlib.sha256(read.encode()).hexdigest()}"
    report = cache.get(key)
    if report is None:
        report = _report(stems, files, with_reference=reference is not None)
        cache.set(key, report, REPORT_CACHE_S)
    return report


def _report(stems: list[Stem], files: list, *, with_reference: bool) -> dict:
    started = time.monotonic()

    def scan(item):
        field, filename = item
        try:
            return _scan(field, filename)
        except (StemError, OSError) as error:
            raise _unreadable(filename, error) from None

    with ThreadPoolExecutor(max_workers=DECODE_WORKERS) as pool:
        scans = list(pool.map(scan, files))
    findings = findings_from_scans(
        scans[:len(stems)], names=[stem.filename for stem in stems], sample_rate=SAMPLE_RATE,
        source_sample_rates_hz=[stem.sample_rate for stem in stems],
        reference=scans[len(stems)] if with_reference else None,
    ) if stems else []
    ids = [str(stem.id) for stem in stems]
    return {
        "stems": len(stems),
        "elapsed_s": round(time.monotonic() - started, 2),
        "findings": [{
            **finding.as_dict(),
            "tracks": [ids[i] for i in finding.tracks],
            "track": ids[finding.track] if finding.track is not None else None,
            "fix_label": FIX_LABELS.get(finding.fix),
        } for finding in findings],
    }


def _store_fixed(stem: Stem, audio, sample_rate_hz: int, folder: Path) -> tuple[Path, str]:
    """Writes the fixed audio ``(channels, samples)``, at the file's own rate ``sample_rate_hz``; returns the
    local file and the name it is stored under."""
    audio = audio.numpy()
    lossless_24 = float(np.max(np.abs(audio))) < 1.0
    extension = "flac" if lossless_24 else "wav"
    filename = f"{PurePath(stem.filename).stem}.{extension}"
    path = save_audio(folder / f"fixed.{extension}", audio, sample_rate_hz, format=extension,
                      subtype="PCM_24" if lossless_24 else "FLOAT")
    return path, filename


_DONE = {"remove_dc": "its DC offset was removed", "fold_to_mono": "it was folded to mono"}


def stem_fix(*, stem: Stem, fix) -> dict:
    """Applies one preflight fix to a stem: ``{"stem": ... or None when deleted, "message": what changed}``.

    400 for an unknown fix or one that does not apply (folding a mono stem); 409 while a job runs, when
    the stem's file cannot be read, or when the stem changed meanwhile.
    """
    if fix not in FIXES:
        raise ApplicationError(f"Unknown fix {fix!r}; use one of {', '.join(FIXES)}.", code="invalid_fix")
    if fix == "delete_stem":
        stem_delete(stem=stem)
        return {"stem": None, "message": f"The track {stem.name} ({stem.filename}) was deleted."}
    _inputs_check_unlocked(Project.objects.select_related("last_job").get(pk=stem.project_id))
    if fix == "fold_to_mono" and stem.channels != 2:
        raise ApplicationError(f"{stem.filename} is already mono.", code="invalid_fix")
    read_from = stem.file.name
    with tempfile.TemporaryDirectory(prefix="mixref-fix-") as folder:
        try:
            # At the file's own rate: the fix needs none, and the stem is stored back at it.
            decoded = decode_isolated(_local_copy(stem.file, Path(folder)), name=stem.filename,
                                      max_duration_s=settings.MIXREF_AUDIO_MAX_DURATION_S, sample_rate_hz=None)
        except (StemError, OSError) as error:
            raise _unreadable(stem.filename, error) from None
        fixed = apply_fix(torch.from_numpy(decoded.audio), fix)
        path, filename = _store_fixed(stem, fixed, decoded.sample_rate_hz, Path(folder))
        with path.open("rb") as local:
            stored_as = stem.file.storage.save(stem.file.field.generate_filename(stem, filename), File(local))
    try:
        with transaction.atomic():
            _inputs_check_unlocked(_project_locked(stem.project))
            current = Stem.objects.select_for_update().filter(pk=stem.pk).first()
            if current is None or current.file.name != read_from:
                raise ApplicationError(f"{stem.filename} changed while it was being fixed; check the stems again.",
                                       code="stem_changed", status=409)
            files_delete_on_commit([read_from])
            current.file.name = stored_as
            current.filename = filename[:255]
            current.channels = fixed.shape[0]
            current.save(update_fields=["file", "filename", "channels", "updated_at"])
    except BaseException:
        stem.file.storage.delete(stored_as)
        raise
    rate = f"{decoded.info.source_sample_rate_hz / 1000:g} kHz"
    kind = "24-bit FLAC" if filename.endswith(".flac") else "32-bit float WAV"
    message = f"{stem.filename}: {_DONE[fix]}; stored as {filename} ({kind}, {rate})."
    logger.info("preflight fix %s on stem %s: %s", fix, stem.pk, message)
    return {"stem": stem_as_dict(current), "message": message}

