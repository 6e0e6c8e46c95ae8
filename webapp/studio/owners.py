"""Who owns a project: a signed-in account, or an anonymous visitor known by a random id kept in the
session. Not the session key: login() rotates the key but keeps the session's data (RELIABILITY.md),
so a visitor who signs in keeps the projects made before."""
import secrets
from dataclasses import dataclass

from django.db.models import Q
from django.http import HttpRequest

VISITOR_SESSION_KEY = "mixref_visitor_id"


@dataclass(frozen=True)
class Owner:
    user_id: int | None
    visitor_id: str

    def projects_filter(self) -> Q:
        """The projects this owner may reach; matches nothing for a visitor without an id."""
        mine = Q(owner_id=self.user_id) if self.user_id is not None else Q(pk__in=[])
        if self.visitor_id:
            mine |= Q(owner__isnull=True, visitor_id=self.visitor_id)
        return mine


def owner_from_request(request: HttpRequest, *, create: bool = False) -> Owner:
    """The request's owner; ``create`` gives a visitor without an id a new one (stored in the session)."""
    visitor_id = request.session.get(VISITOR_SESSION_KEY, "")
    if not visitor_id and create and not request.user.is_authenticated:
        visitor_id = secrets.token_urlsafe(24)
        request.session[VISITOR_SESSION_KEY] = visitor_id
    user_id = request.user.pk if request.user.is_authenticated else None
    return Owner(user_id=user_id, visitor_id=visitor_id)
