"""HTTP for audio files: translate requests into service calls and results into JSON."""
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from webapp.core.selectors import job_as_dict
from webapp.core.uploads import uploaded_file

from .selectors import audio_file_as_dict
from .services import audio_file_upload


@require_POST
def audio_file_create(request: HttpRequest) -> JsonResponse:
    """Multipart field ``file``; answers 202 with the audio file and the loudness job to poll."""
    audio_file, job = audio_file_upload(upload=uploaded_file(request, "file"))
    return JsonResponse({"audio_file": audio_file_as_dict(audio_file), "job": job_as_dict(job)}, status=202)
