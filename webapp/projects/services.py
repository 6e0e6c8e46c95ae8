"""Writes for audio files: store an upload, measure its loudness (in the worker)."""
import math
import shutil
import tempfile
from pathlib import Path

import pyloudnorm
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from mixing import SAMPLE_RATE
from mixing.audio.names import AUDIO_EXTENSIONS, is_audio_filename
from mixing.errors import StemError
from webapp.core.errors import ApplicationError
from webapp.core.models import Job
from webapp.core.services import ProgressReport, job_create
from workers.tasks import audio_file_measure_loudness

from .models import AudioFile
from .selectors import audio_file_get


def audio_file_create(*, upload: UploadedFile) -> AudioFile:
    if not is_audio_filename(upload.name or ""):
        raise ApplicationError(
            f"{upload.name}: not an audio file Mixref reads; use one of {', '.join(sorted(AUDIO_EXTENSIONS))}.",
            code="unsupported_format",
        )
    audio_file = AudioFile(original_name=upload.name, size_bytes=upload.size)
    audio_file.file.save(upload.name, upload, save=False)
    audio_file.full_clean()
    audio_file.save()
    return audio_file


def audio_file_upload(*, upload: UploadedFile) -> tuple[AudioFile, Job]:
    """Stores ``upload`` and queues the job that measures its loudness."""
    with transaction.atomic():
        audio_file = audio_file_create(upload=upload)
        job = job_create(kind=audio_file_measure_loudness.name)
        # After the commit, or a fast worker could look for rows it cannot see yet.
        transaction.on_commit(lambda: audio_file_measure_loudness.delay(str(job.id), str(audio_file.id)))
    return audio_file, job


def audio_file_loudness_measure(*, audio_file_id: str, report: ProgressReport) -> dict:
    """Integrated loudness (ITU-R BS.1770-4, as pyloudnorm measures it) of a stored audio file.

    Runs in the worker. Raises StemError with a reason a user can act on when the file is not
    usable audio.
    """
    # Imported here: it loads torch, which the web server and the worker's parent process do not need.
    from mixing.audio import load_audio

    audio_file = audio_file_get(audio_file_id=audio_file_id)
    report(0.1, "decoding audio")
    with tempfile.TemporaryDirectory(prefix="mixref-audio-") as folder:
        # A local copy whatever the storage (S3 included); the decoder reads it in a child process.
        local_path = Path(folder) / Path(audio_file.file.name).name
        with audio_file.file.open("rb") as stored, local_path.open("wb") as local:
            shutil.copyfileobj(stored, local)
        audio = load_audio(
            local_path, name=audio_file.original_name, max_duration_s=settings.MIXREF_AUDIO_MAX_DURATION_S
        )
    report(0.6, "measuring loudness")
    channels, samples = audio.shape
    integrated_lufs = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(audio.numpy().T)
    if not math.isfinite(integrated_lufs):
        raise StemError(audio_file.original_name, "it is too quiet to measure (below -70 LUFS).")
    return {
        "audio_file_id": str(audio_file.id),
        "integrated_lufs": float(integrated_lufs),
        "sample_rate_hz": SAMPLE_RATE,
        "channels": channels,
        "duration_s": samples / SAMPLE_RATE,
    }
