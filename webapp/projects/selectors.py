"""Reads of audio files."""
from webapp.core.errors import ApplicationError

from .models import AudioFile


def audio_file_get(*, audio_file_id) -> AudioFile:
    try:
        return AudioFile.objects.get(pk=audio_file_id)
    except AudioFile.DoesNotExist:
        raise ApplicationError("No such audio file.", code="not_found", status=404) from None


def audio_file_as_dict(audio_file: AudioFile) -> dict:
    return {
        "id": str(audio_file.id),
        "name": audio_file.original_name,
        "size_bytes": audio_file.size_bytes,
        "created_at": audio_file.created_at.isoformat(),
    }
