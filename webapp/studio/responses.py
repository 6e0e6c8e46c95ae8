"""Stored files as HTTP answers with byte ranges: browsers seek in audio only when the server
answers ``Range: bytes=...`` with 206 Partial Content, which Django's FileResponse does not do."""
import re

from django.db.models.fields.files import FieldFile
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from webapp.core.errors import ApplicationError

CHUNK_BYTES = 64 * 1024
_SINGLE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def byte_range(header: str, size_bytes: int) -> tuple[int, int] | None | bool:
    """The inclusive ``(first, last)`` bytes a Range header asks of a file of ``size_bytes``.

    None when the whole file should be sent (no header, or one this server does not serve, such as
    several ranges: RFC 9110 lets a server ignore Range); False when the range lies outside the file.
    """
    found = _SINGLE_RANGE.match(header or "")
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # "bytes=-N": the last N bytes
        length = int(last)
        if length == 0 or size_bytes == 0:
            return False
        return max(0, size_bytes - length), size_bytes - 1
    first = int(first)
    last = min(int(last), size_bytes - 1) if last else size_bytes - 1
    if first >= size_bytes or first > last:
        return False
    return first, last


def _chunks(file, length: int):
    try:
        while length > 0:
            chunk = file.read(min(CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        file.close()


def stored_file_response(
    request: HttpRequest, field: FieldFile, *, content_type: str, download_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """The stored file ``field``, whole (200) or the byte range asked for (206, or 416 outside the file).

    ``download_name`` makes it an attachment with that name; ``headers`` are added to every answer.
    """
    if not field:
        raise ApplicationError("No such file.", code="not_found", status=404)
    try:
        size_bytes = field.storage.size(field.name)
    except (FileNotFoundError, OSError):
        raise ApplicationError("The file is missing from storage.", code="not_found", status=404) from None
    wanted = byte_range(request.headers.get("Range", ""), size_bytes)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size_bytes}"
    else:
        first, last = wanted or (0, size_bytes - 1)
        file = field.storage.open(field.name, "rb")
        file.seek(first)
        response = StreamingHttpResponse(_chunks(file, last - first + 1), content_type=content_type,
                                         status=206 if wanted else 200)
        response["Content-Length"] = str(last - first + 1)
        if wanted:
            response["Content-Range"] = f"bytes {first}-{last}/{size_bytes}"
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-cache"
    if download_name:
        response["Content-Disposition"] = content_disposition_header(True, download_name)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
