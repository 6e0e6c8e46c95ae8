"""Errors become responses here: JSON under /api/, a short HTML page elsewhere."""
import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from mixing.errors import MixingError

from .errors import ApplicationError, as_application_error

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
