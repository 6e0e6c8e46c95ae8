"""Upload limits that answer JSON: Django caps neither the total size of uploaded files nor answers
anything but an HTML 400 when too many files arrive (RELIABILITY.md)."""
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

from .errors import ApplicationError

# A multipart body is longer than the files it carries: boundaries and part headers, a few hundred
# bytes a file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class QuotaUploadHandler(FileUploadHandler):
    """Stops reading a multipart body past MIXREF_UPLOAD_MAX_BYTES of files or MIXREF_UPLOAD_MAX_FILES
    files, and marks the request so that ``uploaded_file`` answers 413."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.request.upload_refused = None
        self.file_bytes = 0
        self.file_count = 0
        # Refuse at the first file rather than after storing a body that is already too long.
        self.body_too_long = content_length > settings.MIXREF_UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD_BYTES
        return None

    def new_file(self, *args, **kwargs):
        self.file_count += 1
        if self.body_too_long:
            self._refuse("too_large")
        if self.file_count > settings.MIXREF_UPLOAD_MAX_FILES:
            self._refuse("too_many_files")
        return super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.file_bytes += len(raw_data)
        if self.file_bytes > settings.MIXREF_UPLOAD_MAX_BYTES:
            self._refuse("too_large")
        return raw_data

    def file_complete(self, file_size):
        return None

    def _refuse(self, reason: str) -> None:
        self.request.upload_refused = reason
        # Django still reads the rest of the body, so the client receives our answer.
        raise StopUpload(connection_reset=False)


def uploaded_file(request: HttpRequest, field_name: str) -> UploadedFile:
    """The file sent under ``field_name``, or an ApplicationError saying why there is none."""
    upload = _files_within_limits(request).get(field_name)
    if upload is None:
        raise ApplicationError(f"Send the file as multipart form field {field_name!r}.", code="missing_file")
    if upload.size == 0:
        raise ApplicationError(f"{upload.name}: the file is empty.", code="empty_file")
    return upload


def uploaded_files(request: HttpRequest, field_name: str) -> list[UploadedFile]:
    """All files sent under ``field_name`` (empty ones included, for the caller to judge each), or an
    ApplicationError when there are none or the upload went past the limits."""
    uploads = _files_within_limits(request).getlist(field_name)
    if not uploads:
        raise ApplicationError(f"Send the files as multipart form field {field_name!r}.", code="missing_file")
    return uploads


def upload_too_large() -> ApplicationError:
    limit_mb = settings.MIXREF_UPLOAD_MAX_BYTES / 1024**2
    return ApplicationError(f"The upload is larger than the limit of {limit_mb:g} MB.", code="upload_too_large",
                            status=413)


def _files_within_limits(request: HttpRequest):
    files = request.FILES  # parses the body, running QuotaUploadHandler
    refused = getattr(request, "upload_refused", None)
    if refused == "too_large":
        raise upload_too_large()
    if refused == "too_many_files":
        raise ApplicationError(
            f"More than {settings.MIXREF_UPLOAD_MAX_FILES} files were sent at once.",
            code="too_many_files",
            status=413,
        )
    return files
