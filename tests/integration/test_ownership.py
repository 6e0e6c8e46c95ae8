"""Who reaches what: every URL the resolver knows, for the owner, another visitor, another signed-in user
and an anonymous client. Only the owner gets 2xx on a project's URLs; the rows come from a table that
must name every route, so a new endpoint without a row fails here. Crafted URLs never reach Django's
debug page, and stored media are never served without the owner check, DEBUG or not."""
import importlib
import io
import json
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, clear_url_caches, get_resolver

from mixing.preview import MANIFEST_NAME
from webapp.core.models import Job
from webapp.studio.models import MixVersion, Stem

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    project_create,
    ready_project,
    reference_wav,
    render_request,
    rendered_project,
    session_stems,
)

pytestmark = pytest.mark.django_db


def _multipart(field: str, name: str, content: bytes) -> dict:
    return {"data": {field: SimpleUploadedFile(name, content)}}


def _json(body: dict) -> dict:
    return {"data": body, "content_type": "application/json"}


# route name -> [(method, request kwargs given the project's JSON)]; destructive rows last.
OWNED = {
    "studio-page": [("get", lambda project: {})],
    "job-detail": [("get", lambda project: {})],
    "job-cancel": [("post", lambda project: {})],
    "project-detail": [("get", lambda project: {}), ("patch", lambda project: _json({"name": "Renamed"}))],
    "stems": [("post", lambda project: _multipart("files", "Extra.wav", session_stems(1.5)["01_Bass.wav"]))],
    "stem-detail": [("patch", lambda project: _json({"name": "Low end"}))],
    "reference": [("post", lambda project: _multipart("file", "Other ref.wav", reference_wav(2.0)))],
    "reference-audio": [("get", lambda project: {})],
    "baseline-audio": [("get", lambda project: {})],
    "mix": [("post", lambda project: _json({}))],
    "render": [("post", lambda project: _json(render_request(project)))],
    "preset": [("post", lambda project: _multipart("file", "mine.json",
                                                   json.dumps(render_request(project)["params"]).encode()))],
    "version-detail": [("get", lambda project: {})],
    "version-charts": [("get", lambda project: {})],
    "version-advice": [("get", lambda project: {})],
    "version-audio": [("get", lambda project: {})],
    "version-download": [("get", lambda project: {"data": {"format": "flac"}})],
    "version-preset": [("get", lambda project: {})],
    "version-stems": [("post", lambda project: {})],
    "version-explain": [("get", lambda project: {})],
    "strength": [("post", lambda project: _json({"strengths_pct": {"tone": 50}}))],
    "version-preview": [("get", lambda project: {}), ("post", lambda project: {})],
    "version-preview-file": [("get", lambda project: {})],
    "preflight": [("get", lambda project: {})],
    "stem-fix": [("post", lambda project: _json({"fix": "remove_dc"}))],
}
DESTRUCTIVE = [("stem-detail", "delete"), ("project-detail", "delete")]
# Routes that are nobody's: each answers everyone alike.
PUBLIC = {"project-list-page", "schema", "session", "healthz", "projects"}
# Django's admin checks staff status itself; the catch-all answers JSON 404s.
OTHERS = {"admin", "api-not-found"}


def _routes(patterns=None, prefix="") -> dict[str, str]:
    """``{name: route}`` for every pattern the resolver knows (the admin as one entry)."""
    routes = {}
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                routes["admin"] = prefix + str(entry.pattern)
            else:
                routes |= _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            routes[entry.name or entry.callback.__name__.replace("_", "-")] = prefix + str(entry.pattern)
    return routes


def test_every_route_has_a_row_in_the_ownership_matrix():
    assert set(_routes()) == set(OWNED) | PUBLIC | OTHERS


def _url(name: str, project: dict) -> str:
    job_id = str(MixVersion.objects.get(project_id=project["id"], number=1).job_id)
    values = {"project_id": project["id"], "stem_id": project["stems"][0]["id"], "number": "1", "job_id": job_id}
    route = _routes()[name].replace("<str:entry>", PREVIEW_FILE)
    for key, value in values.items():
        for converter in ("uuid", "int"):
            route = route.replace(f"<{converter}:{key}>", value)
    return "/" + route


@pytest.fixture
def intruders(django_user_model) -> dict[str, Client]:
    """Another visitor and another signed-in user, each with a project of their own, and an anonymous client."""
    visitor = Client()
    project_create(visitor, "Visitor's song")
    user = Client()
    user.force_login(django_user_model.objects.create_user("mallory", password="not-the-owner"))
    project_create(user, "Mallory's song")
    return {"another visitor": visitor, "another signed-in user": user, "anonymous": Client()}


def _finish_jobs() -> None:
    """Lets the owner start the next job: the captured one never reaches a worker here."""
    Job.objects.exclude(status=Job.Status.SUCCEEDED).update(status=Job.Status.SUCCEEDED)


PREVIEW_FILE = "00.ogg"


def _store_preview(project: dict) -> None:
    """A one-source live preview on version 1 (its bytes need not decode: only who may read them matters), and a
    neutral start for the match strength to move from."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as preview:
        preview.writestr(MANIFEST_NAME, json.dumps({"sources": [{"file": PREVIEW_FILE}]}))
        preview.writestr(PREVIEW_FILE, b"OggS")
    version = MixVersion.objects.get(project_id=project["id"], number=1)
    version.neutral_params = version.params
    version.preview_zip.save("preview.zip", ContentFile(archive.getvalue()))


def test_only_the_owner_reaches_a_projects_urls(client, rendered_project, intruders, enqueued):
    project = rendered_project
    _store_preview(project)
    calls = [(name, method, kwargs) for name, rows in OWNED.items() for method, kwargs in rows]
    calls += [(name, method, lambda project: {}) for name, method in DESTRUCTIVE]

    for name, method, kwargs in calls:
        url = _url(name, project)
        for who, intruder in intruders.items():
            response = getattr(intruder, method)(url, **kwargs(project))
            assert response.status_code == 404, (who, method, url, response.status_code)
        response = getattr(client, method)(url, **kwargs(project))
        assert 200 <= response.status_code < 300, (method, url, response.status_code, response.content[:300])
        _finish_jobs()
    assert not Stem.objects.filter(project_id=project["id"]).exists()


def test_public_routes_show_each_client_only_its_own(client, rendered_project, intruders):
    for intruder in intruders.values():
        listed = intruder.get("/api/projects/").json()["projects"]
        assert rendered_project["id"] not in [project["id"] for project in listed]
        for url in ("/", "/api/schema/", "/api/session/", "/healthz"):
            assert intruder.get(url).status_code == 200, url
        assert intruder.get("/admin/").status_code == 302  # to the admin's sign-in page
        assert intruder.get("/api/nothing-here/").status_code == 404


@pytest.mark.parametrize("debug", [False, True])
def test_stored_media_are_never_served_without_the_owner_check(client, rendered_project, settings, debug):
    settings.DEBUG = debug
    import webapp.config.urls

    importlib.reload(webapp.config.urls)  # a DEBUG-only route would be added at import time
    clear_url_caches()
    stem = Stem.objects.filter(project_id=rendered_project["id"]).first()
    for path in (f"/media/{stem.file.name}", f"/{stem.file.name}", "/media/"):
        assert client.get(path).status_code == 404, path


CRAFTED = [
    "/media/..%2f..%2fwebapp%2fconfig%2fsettings%2fbase.py", "/media/%00", "/static/..%2f..%2fmanage.py",
    "/projects/not-a-uuid/", "/api/projects/00000000-0000-0000-0000-000000000000/versions/99999999999999999999/",
    "/api/projects/%00/", "/api/" + "a" * 5000, "/%ff%fe/", "/api/jobs/../../etc/passwd",
    "/projects/%2e%2e/%2e%2e/",
]


@pytest.mark.parametrize("path", CRAFTED)
def test_crafted_urls_answer_a_plain_4xx_never_the_debug_page(client, path):
    response = client.get(path)

    assert 400 <= response.status_code < 500, (path, response.status_code)
    body = response.content.decode(errors="replace")
    for leak in ("Traceback", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "Request Method", "/work/"):
        assert leak not in body, (path, leak)


def test_a_version_number_past_the_databases_integers_answers_404(client, ready_project):
    response = client.get(f"/api/projects/{ready_project['id']}/versions/99999999999999999999/")

    assert response.status_code == 404


@pytest.mark.parametrize("path", CRAFTED)
def test_in_debug_crafted_urls_still_answer_4xx_without_a_traceback_or_settings(client, settings, path):
    settings.DEBUG = True  # the local default: Django's 404 page lists routes, but no crafted URL may reach a 500

    response = client.get(path)

    assert 400 <= response.status_code < 500, (path, response.status_code)
    body = response.content.decode(errors="replace")
    for leak in ("Traceback", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "/work/"):
        assert leak not in body, (path, leak)
