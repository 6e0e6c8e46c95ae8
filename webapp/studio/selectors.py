"""Reads of projects, stems, versions and their jobs, and their JSON forms (docs/API.md).

Every lookup goes through the owner's projects, so another owner's project, stem, version, file or
job answers 404 exactly like one that does not exist.
"""
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import Prefetch, QuerySet

from mixing.preview import read_manifest
from webapp.core.errors import ApplicationError
from webapp.core.models import Job

from .models import MixVersion, Project, Stem
from .owners import Owner

# The version columns a summary needs; analysis and chart data can be large.
_SUMMARY_DEFERRED = ("analysis", "chart_data", "params", "auto_params")


def _not_found(what: str) -> ApplicationError:
    return ApplicationError(f"No such {what}.", code="not_found", status=404)


def project_list(*, owner: Owner) -> QuerySet[Project]:
    return (
        Project.objects.filter(owner.projects_filter())
        .select_related("reference", "last_job")
        .prefetch_related("stems", Prefetch("versions", queryset=MixVersion.objects.defer(*_SUMMARY_DEFERRED)))
    )


def project_get(*, owner: Owner, project_id) -> Project:
    try:
        return project_list(owner=owner).get(pk=project_id)
    except Project.DoesNotExist:
        raise _not_found("project") from None


def stem_get(*, project: Project, stem_id) -> Stem:
    try:
        return project.stems.get(pk=stem_id)
    except Stem.DoesNotExist:
        raise _not_found("stem") from None


def stems_ordered(*, project: Project) -> list[Stem]:
    return list(Stem.objects.filter(project=project).order_by("position"))


def version_get(*, project: Project, number: int) -> MixVersion:
    try:
        return project.versions.get(number=number)
    except MixVersion.DoesNotExist:
        raise _not_found("version") from None


def version_latest(*, project: Project) -> MixVersion | None:
    return MixVersion.objects.filter(project=project).order_by("-number").first()


def job_get(*, owner: Owner, job_id) -> Job:
    """A job of one of the owner's projects; 404 for any other, as if it did not exist."""
    job = Job.objects.filter(pk=job_id, studio__project__in=Project.objects.filter(owner.projects_filter())).first()
    if job is None:
        raise _not_found("job")
    return job


def project_status(project: Project) -> str:
    """The project badge: ``mixing`` while a job runs, ``failed`` after a failed one, ``mixed``, or
    ``changed`` when a stem or the reference came in after the latest version or a stem was deleted since;
    before any mix ``ready`` with stems and a reference, ``needs_reference`` or ``needs_stems`` with only one
    of them, else ``empty``."""
    job = project.last_job
    if job is not None and not job.is_finished:
        return "mixing"
    if job is not None and job.status == Job.Status.FAILED:
        return "failed"
    stems = project.stems.all()
    reference = reference_or_none(project)
    versions = project.versions.all()
    if versions:
        latest = max(versions, key=lambda version: version.created_at)
        inputs = [stem.created_at for stem in stems] + ([reference.created_at] if reference is not None else [])
        # A deleted stem leaves the latest version with a track the project no longer has.
        deleted = len(latest.params.get("tracks", [])) > len(stems)
        return "changed" if deleted or any(created_at > latest.created_at for created_at in inputs) else "mixed"
    if stems and reference is not None:
        return "ready"
    if stems:
        return "needs_reference"
    return "needs_stems" if reference is not None else "empty"


def reference_or_none(project: Project):
    try:
        return project.reference
    except Project.reference.RelatedObjectDoesNotExist:
        return None


def stem_as_dict(stem: Stem) -> dict:
    return {
        "id": str(stem.id),
        "name": stem.name,
        "filename": stem.filename,
        "channels": stem.channels,
        "duration_s": stem.duration_s,
        "sample_rate": stem.sample_rate,
        "position": stem.position,
        "silent": stem.silent,
        "family": stem.family or None,
    }


def reference_as_dict(project: Project) -> dict | None:
    reference = reference_or_none(project)
    if reference is None:
        return None
    return {
        "filename": reference.filename,
        "duration_s": reference.duration_s,
        "loudness_lufs": reference.loudness_lufs,
        "audio_kept": bool(reference.file),
    }


def job_as_dict(job: Job) -> dict:
    """The JSON form of a job that pollers receive, with the version it made once it has."""
    version = MixVersion.objects.filter(job=job).only("number").first()
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "stage": job.stage,
        "error": job.error,
        "attempts": job.attempts,
        "result": job.result,
        "stage_s": job.stage_s,
        "version": version.number if version is not None else None,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "url": f"/api/jobs/{job.id}/",
    }


def project_as_dict(project: Project) -> dict:
    versions = sorted(project.versions.all(), key=lambda version: version.number)
    job = project.last_job
    return {
        "id": str(project.id),
        "name": project.name,
        "status": project_status(project),
        "created_at": project.created_at.isoformat(),
        "stems": [stem_as_dict(stem) for stem in sorted(project.stems.all(), key=lambda stem: stem.position)],
        "reference": reference_as_dict(project),
        "delete_reference_audio": project.delete_reference_audio,
        "versions": [version_summary_as_dict(version) for version in versions],
        "current_version": versions[-1].number if versions else None,
        "active_job": job_as_dict(job) if job is not None and not job.is_finished else None,
    }


def version_summary_as_dict(version: MixVersion) -> dict:
    return {
        "number": version.number,
        "created_at": version.created_at.isoformat(),
        "method": version.method,
        "loudness_lufs": version.loudness_lufs,
        "true_peak_dbtp": version.true_peak_dbtp,
        "af_loss": version.af_loss,
    }


def version_url(version: MixVersion) -> str:
    return f"/api/projects/{version.project_id}/versions/{version.number}/"


def version_advice(version: MixVersion) -> dict:
    """The advice toward the automatic mix stored with the version's analysis ({} for versions made before it)."""
    return (version.analysis or {}).get("advice", {})


def version_explanation(version: MixVersion) -> dict:
    """What the version's mix did (``mixing.session.MixSession.explain``), stored with its chart data by the job
    that made it ({} for versions made before it)."""
    return (version.chart_data or {}).get("explain", {})


def version_as_dict(version: MixVersion) -> dict:
    url = version_url(version)
    return {
        **version_summary_as_dict(version),
        "params": version.params,
        "auto_params": version.auto_params,
        # Whether the match strength can move this version's automatic mix, and how far this version did (%).
        "has_neutral": bool(version.neutral_params),
        "strengths_pct": {dimension: 100.0 * value for dimension, value in (version.strengths or {}).items()},
        "muted": version.muted,
        "solo": version.solo,
        "analysis": version.analysis,
        "audio_url": f"{url}audio/",
        "downloads": {
            "wav24": f"{url}download/?format=wav24",
            "wav16": f"{url}download/?format=wav16",
            "flac": f"{url}download/?format=flac",
            "preset": f"{url}preset/",
            "stems": f"{url}stems/" if version.stems_zip else None,
        },
        "stems_url": f"{url}stems/",
        # The live preview's manifest once made (a stems job with "set": "preview"), else None.
        "preview_url": f"{url}preview/" if version.preview_zip else None,
    }


@contextmanager
def _preview_archive(version: MixVersion) -> Iterator[zipfile.ZipFile]:
    if not version.preview_zip:
        raise ApplicationError("The live preview of this version has not been made yet; prepare it first.",
                               code="not_found", status=404)
    with version.preview_zip.open("rb") as stored, zipfile.ZipFile(stored) as archive:
        yield archive


def version_preview_manifest(version: MixVersion) -> dict:
    """The live preview's manifest (mixing.preview.preview_manifest), each source with its URL; 404 until made."""
    with _preview_archive(version) as archive:
        manifest = read_manifest(archive)
    url = f"{version_url(version)}preview/"
    for source in manifest["sources"]:
        source["url"] = f"{url}{source['file']}"
    return manifest


def version_preview_file(version: MixVersion, entry: str) -> bytes:
    """The Ogg file ``entry`` of the live preview; 404 until made or for a file its manifest does not name."""
    with _preview_archive(version) as archive:
        if entry not in {source["file"] for source in read_manifest(archive)["sources"]}:
            raise ApplicationError(f"The live preview has no file {entry!r}.", code="not_found", status=404)
        return archive.read(entry)
