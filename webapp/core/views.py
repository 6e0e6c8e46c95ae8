"""HTTP views shared by all apps: session and CSRF token, health check, JSON errors."""
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .errors import ApplicationError
from .middleware import error_response


@require_GET
@never_cache
def session(request: HttpRequest) -> JsonResponse:
    """Who is signed in, and the CSRF token (also set as the csrftoken cookie) to send as X-CSRFToken."""
    user = request.user.get_username() if request.user.is_authenticated else None
    return JsonResponse({"user": user, "csrf_token": get_token(request)})


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    connection.ensure_connection()
    return JsonResponse({"status": "ok"})


def api_not_found(request: HttpRequest) -> HttpResponse:
    return error_response(request, ApplicationError("No such API endpoint.", code="not_found", status=404))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    error = ApplicationError(
        f"CSRF check failed ({reason}); send the token from /api/session/ as the X-CSRFToken header.",
        code="csrf_failed",
        status=403,
    )
    return error_response(request, error)
