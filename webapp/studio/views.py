"""HTTP for the studio (docs/API.md): requests become service calls, results become JSON or files.

Every view finds the project through the request's owner, so others' ids answer 404.
"""
import json
import mimetypes
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mixing.params import schema_dict
from mixing.tone.stage import tone_families
from webapp.core.errors import ApplicationError
from webapp.core.uploads import uploaded_file, uploaded_files

from . import charts, preflight, selectors, services
from .models import MixVersion, Project
from .owners import owner_from_request
from .responses import stored_file_response

LOUDNESS_HEADER = "X-Loudness-LUFS"
DOWNLOAD_FORMATS = {
    "wav24": ("wav24_file", "wav", "audio/wav"),
    "wav16": ("wav16_file", "wav", "audio/wav"),
    "flac": ("flac_file", "flac", "audio/flac"),
}


def _by_method(request: HttpRequest, handlers: dict[str, Callable[[], HttpResponse]]) -> HttpResponse:
    handler = handlers.get(request.method)
    if handler is None:
        raise ApplicationError(
            f"{request.method} is not allowed here; use {', '.join(handlers)}.", code="method_not_allowed", status=405
        )
    return handler()


def _json_body(request: HttpRequest) -> dict:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise ApplicationError("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApplicationError("The request body must be a JSON object.", code="invalid_json")
    return body


def _project(request: HttpRequest, project_id) -> Project:
    return selectors.project_get(owner=owner_from_request(request), project_id=project_id)


def _project_json(request: HttpRequest, project_id, status: int = 200) -> JsonResponse:
    return JsonResponse(selectors.project_as_dict(_project(request, project_id)), status=status)


def _loudness_headers(loudness_lufs: float | None) -> dict[str, str]:
    return {LOUDNESS_HEADER: f"{loudness_lufs:.2f}"} if loudness_lufs is not None else {}


def _version(request: HttpRequest, project_id, number: int) -> tuple[Project, MixVersion]:
    project = _project(request, project_id)
    return project, selectors.version_get(project=project, number=number)


def _file_stem(project: Project, version: MixVersion) -> str:
    return f"{slugify(project.name) or 'mix'}-v{version.number}"


# Pages


@require_GET
def project_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "studio/list.html")


@require_GET
def studio_page(request: HttpRequest, project_id) -> HttpResponse:
    project = _project(request, project_id)
    return render(request, "studio/studio.html", {"project_id": str(project.id)})


# API


@require_GET
def schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse({**schema_dict(), "families": tone_families()})


@never_cache
def projects(request: HttpRequest) -> HttpResponse:
    def listed():
        owned = selectors.project_list(owner=owner_from_request(request))
        return JsonResponse({"projects": [selectors.project_as_dict(project) for project in owned]})

    def created():
        owner = owner_from_request(request, create=True)
        project = services.project_create(owner=owner, name=_json_body(request).get("name"))
        return _project_json(request, project.id, status=201)

    return _by_method(request, {"GET": listed, "POST": created})


@never_cache
def project_detail(request: HttpRequest, project_id) -> HttpResponse:
    def renamed():
        body = _json_body(request)
        if "name" in body or "delete_reference_audio" not in body:
            services.project_rename(project=_project(request, project_id), name=body.get("name"))
        if "delete_reference_audio" in body:
            services.project_privacy_set(project=_project(request, project_id),
                                         delete_reference_audio=body["delete_reference_audio"])
        return _project_json(request, project_id)

    def deleted():
        services.project_delete(project=_project(request, project_id))
        return HttpResponse(status=204)

    return _by_method(request, {"GET": lambda: _project_json(request, project_id), "PATCH": renamed, "DELETE": deleted})


@never_cache
def stems(request: HttpRequest, project_id) -> HttpResponse:
    def added():
        project = _project(request, project_id)
        new_stems, rejected = services.stems_add(project=project, uploads=uploaded_files(request, "files"))
        return JsonResponse({"stems": [selectors.stem_as_dict(stem) for stem in new_stems], "rejected": rejected},
                            status=201)

    return _by_method(request, {"POST": added})


@never_cache
def stem_detail(request: HttpRequest, project_id, stem_id) -> HttpResponse:
    def stem():
        return selectors.stem_get(project=_project(request, project_id), stem_id=stem_id)

    def renamed():
        body = _json_body(request)
        changed = stem()
        if "name" in body or "family" not in body:
            changed = services.stem_rename(stem=changed, name=body.get("name"))
        if "family" in body:
            changed = services.stem_family_set(stem=changed, family=body["family"])
        return JsonResponse(selectors.stem_as_dict(changed))

    def deleted():
        services.stem_delete(stem=stem())
        return HttpResponse(status=204)

    return _by_method(request, {"PATCH": renamed, "DELETE": deleted})


@require_GET
@never_cache
def stems_preflight(request: HttpRequest, project_id) -> JsonResponse:
    return JsonResponse(preflight.project_preflight(project=_project(request, project_id)))


@never_cache
def stem_fix(request: HttpRequest, project_id, stem_id) -> HttpResponse:
    def fixed():
        stem = selectors.stem_get(project=_project(request, project_id), stem_id=stem_id)
        return JsonResponse(preflight.stem_fix(stem=stem, fix=_json_body(request).get("fix")))

    return _by_method(request, {"POST": fixed})


def _parse_put_multipart(request: HttpRequest) -> None:
    """Django parses multipart bodies of POST requests only; the reference arrives by PUT."""
    if request.method == "PUT" and request.content_type == "multipart/form-data" and not hasattr(request, "_files"):
        request._post, request._files = request.parse_file_upload(request.META, request)


@never_cache
def reference(request: HttpRequest, project_id) -> HttpResponse:
    def replaced():
        project = _project(request, project_id)
        _parse_put_multipart(request)
        services.reference_set(project=project, upload=uploaded_file(request, "file"))
        return JsonResponse(selectors.reference_as_dict(_project(request, project_id)), status=201)

    return _by_method(request, {"PUT": replaced, "POST": replaced})


def _job_response(job) -> JsonResponse:
    return JsonResponse(selectors.job_as_dict(job), status=202)


@never_cache
def mix(request: HttpRequest, project_id) -> HttpResponse:
    def started():
        method = _json_body(request).get("method", "auto")
        return _job_response(services.mix_start(project=_project(request, project_id), method=method))

    return _by_method(request, {"POST": started})


@never_cache
def render_version(request: HttpRequest, project_id) -> HttpResponse:
    def started():
        body = _json_body(request)
        job = services.render_start(
            project=_project(request, project_id), params=body.get("params"), muted=body.get("muted"),
            solo=body.get("solo"), base_version=body.get("base_version"),
        )
        return _job_response(job)

    return _by_method(request, {"POST": started})


@never_cache
def strength(request: HttpRequest, project_id) -> HttpResponse:
    def started():
        body = _json_body(request)
        job = services.strength_start(
            project=_project(request, project_id), strengths_pct=body.get("strengths_pct"), muted=body.get("muted"),
            solo=body.get("solo"), base_version=body.get("base_version"),
        )
        return _job_response(job)

    return _by_method(request, {"POST": started})


@never_cache
def preset(request: HttpRequest, project_id) -> HttpResponse:
    def started():
        project = _project(request, project_id)
        return _job_response(services.preset_start(project=project, upload=uploaded_file(request, "file")))

    return _by_method(request, {"POST": started})


@require_GET
@never_cache
def job_detail(request: HttpRequest, job_id) -> JsonResponse:
    return JsonResponse(selectors.job_as_dict(selectors.job_get(owner=owner_from_request(request), job_id=job_id)))


@never_cache
def job_cancel(request: HttpRequest, job_id) -> JsonResponse:
    def cancelled():
        job = selectors.job_get(owner=owner_from_request(request), job_id=job_id)
        return JsonResponse(selectors.job_as_dict(services.project_job_cancel(job=job)))

    return _by_method(request, {"POST": cancelled})


@require_GET
@never_cache
def version_detail(request: HttpRequest, project_id, number: int) -> JsonResponse:
    _, version = _version(request, project_id, number)
    return JsonResponse(selectors.version_as_dict(version))


@require_GET
def version_advice(request: HttpRequest, project_id, number: int) -> JsonResponse:
    _, version = _version(request, project_id, number)
    return JsonResponse(selectors.version_advice(version))


@require_GET
def version_explanation(request: HttpRequest, project_id, number: int) -> JsonResponse:
    _, version = _version(request, project_id, number)
    return JsonResponse(selectors.version_explanation(version))


@require_GET
def version_charts(request: HttpRequest, project_id, number: int) -> JsonResponse:
    _, version = _version(request, project_id, number)
    return JsonResponse(charts.figures(version.chart_data, version.analysis))


@require_GET
def version_audio(request: HttpRequest, project_id, number: int) -> HttpResponse:
    _, version = _version(request, project_id, number)
    return stored_file_response(request, version.wav16_file, content_type="audio/wav",
                                headers=_loudness_headers(version.loudness_lufs))


@require_GET
def version_download(request: HttpRequest, project_id, number: int) -> HttpResponse:
    project, version = _version(request, project_id, number)
    audio_format = request.GET.get("format", "wav24")
    if audio_format not in DOWNLOAD_FORMATS:
        raise ApplicationError(f"Unknown format {audio_format!r}; use one of {', '.join(DOWNLOAD_FORMATS)}.",
                               code="invalid_format")
    field_name, extension, content_type = DOWNLOAD_FORMATS[audio_format]
    return stored_file_response(
        request, getattr(version, field_name), content_type=content_type,
        download_name=f"{_file_stem(project, version)}.{extension}", headers=_loudness_headers(version.loudness_lufs),
    )


@never_cache
def version_stems(request: HttpRequest, project_id, number: int) -> HttpResponse:
    """GET: the version's processed stems as a ZIP (404 until made); POST: a job that makes them."""
    def download():
        project, version = _version(request, project_id, number)
        if not version.stems_zip:
            raise ApplicationError("These stems have not been exported yet; export them first.",
                                   code="not_found", status=404)
        return stored_file_response(request, version.stems_zip, content_type="application/zip",
                                    download_name=f"{_file_stem(project, version)}-stems.zip")

    def started():
        project, version = _version(request, project_id, number)
        return _job_response(services.stems_export_start(project=project, version=version))

    return _by_method(request, {"GET": download, "POST": started})


@never_cache
def version_preview(request: HttpRequest, project_id, number: int) -> HttpResponse:
    """GET: the live preview's manifest (404 until made); POST: a job that makes its files."""
    def manifest():
        _, version = _version(request, project_id, number)
        return JsonResponse(selectors.version_preview_manifest(version))

    def started():
        project, version = _version(request, project_id, number)
        return _job_response(services.preview_start(project=project, version=version))

    return _by_method(request, {"GET": manifest, "POST": started})


@require_GET
def version_preview_file(request: HttpRequest, project_id, number: int, entry: str) -> HttpResponse:
    _, version = _version(request, project_id, number)
    return HttpResponse(selectors.version_preview_file(version, entry), content_type="audio/ogg")


@require_GET
def version_preset(request: HttpRequest, project_id, number: int) -> HttpResponse:
    project, version = _version(request, project_id, number)
    response = JsonResponse(version.params, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = content_disposition_header(True, f"{_file_stem(project, version)}-preset.json")
    return response


@require_GET
def reference_audio(request: HttpRequest, project_id) -> HttpResponse:
    project = _project(request, project_id)
    stored = selectors.reference_or_none(project)
    if stored is None:
        raise ApplicationError("This project has no reference song yet.", code="not_found", status=404)
    if not stored.file:
        raise ApplicationError("The reference's audio was deleted after analysis; only its features are kept.",
                               code="not_found", status=404)
    content_type = mimetypes.guess_type(stored.filename)[0] or "application/octet-stream"
    return stored_file_response(request, stored.file, content_type=content_type,
                                headers=_loudness_headers(stored.loudness_lufs))


@require_GET
def baseline_audio(request: HttpRequest, project_id) -> HttpResponse:
    project = _project(request, project_id)
    if not project.baseline_file:
        raise ApplicationError("The baseline is made with the first mix.", code="not_found", status=404)
    return stored_file_response(request, project.baseline_file, content_type="audio/wav",
                                headers=_loudness_headers(project.baseline_loudness_lufs))
