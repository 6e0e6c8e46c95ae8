import uuid
from pathlib import PurePath

from django.db import models

from webapp.core.models import BaseModel


def audio_upload_to(instance: "AudioFile", filename: str) -> str:
    # A fresh uuid per file: storage keys never collide and never carry a user's file name.
    return f"audio/{uuid.uuid4().hex}{PurePath(filename).suffix.lower()}"


class AudioFile(BaseModel):
    """One uploaded audio file, kept in the default storage (MEDIA_ROOT or S3)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.FileField(upload_to=audio_upload_to, max_length=200)
    original_name = models.CharField(max_length=255)
    size_bytes = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return self.original_name
