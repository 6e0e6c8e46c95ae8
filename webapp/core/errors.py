"""ApplicationError: the one error type whose message users see, and ``as_application_error``,
the one place that turns other exceptions into it (webapp.core.middleware answers HTTP requests
with it, workers.tasks fails jobs with it)."""
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404

from mixing.errors import MixingError


class ApplicationError(Exception):
    """A request or job could not be done, for a reason the user can act on.

    ``message`` is shown as it is; ``code`` is a stable machine-readable name; ``status`` is the
    HTTP status a view answers with; ``details`` is JSON for clients (docs/API.md, error envelope).
    """

    def __init__(self, message: str, *, code: str = "invalid", status: int = 400, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details or {}

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}


def as_application_error(exc: Exception) -> ApplicationError | None:
    """The user-facing form of ``exc``, or None when only a generic error may be shown."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, MixingError):
        # The mixing library writes its messages for users (mixing/errors.py).
        return ApplicationError(str(exc), code="invalid_input", status=400)
    if isinstance(exc, Http404):
        return ApplicationError("Not found.", code="not_found", status=404)
    if isinstance(exc, PermissionDenied):
        return ApplicationError("Permission denied.", code="permission_denied", status=403)
    if isinstance(exc, RequestDataTooBig):
        return ApplicationError("The request is too large.", code="too_large", status=413)
    if isinstance(exc, SuspiciousOperation):
        return ApplicationError("The request was refused.", code="bad_request", status=400)
    return None
