"""Errors become responses here: JSON under /api/, a short HTML page elsewhere. Also the request-size
gate that answers before a body is read, and the Content-Security-Policy header."""
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from mixing.errors import MixingError

from .errors import ApplicationError, as_application_error
from .uploads import MULTIPART_OVERHEAD_BYTES, upload_too_large

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({"error": error.as_dict()}, status=error.status)
    html = render_to_string("core/error.html", {"error": error}, request=request)
    return HttpResponse(html, status=error.status)


class ApplicationErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        error = as_application_error(exc)
        if is_api_request(request):
            if error is None:
                logger.exception("%s %s failed", request.method, request.path)
                error = ApplicationError("Internal error; it has been logged.", code="internal_error", status=500)
            return error_response(request, error)
        # Pages keep Django's own 404, 403 and 500 handling for everything but our own errors.
        if isinstance(exc, (ApplicationError, MixingError)):
            return error_response(request, error)
        return None


class RequestSizeMiddleware:
    """Refuses a body longer than MIXREF_UPLOAD_MAX_BYTES (plus multipart overhead) from its Content-Length,
    before anything reads it: a 600 MB upload is answered 413 at once instead of after it arrived. A
    chunked body states no length, and the WSGI server would hand Django an empty one: it gets 411."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return error_response(request, ApplicationError(
                "Chunked request bodies are not supported; send the request with a Content-Length header "
                "(an ordinary form or file upload does).", code="length_required", status=411,
            ))
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(request, ApplicationError(
                "The Content-Length header is not a number.", code="invalid_request", status=400))
        if content_length > settings.MIXREF_UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD_BYTES:
            return error_response(request, upload_too_large())
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Sets CONTENT_SECURITY_POLICY on every answer (Django 5.2 has no setting of its own for it)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "; ".join(f"{directive} {' '.join(sources)}"
                                for directive, sources in settings.CONTENT_SECURITY_POLICY.items())

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
