"""Writes the web process makes: projects, stems, the reference, and starting the jobs that mix.

Uploaded audio is decoded only in a child process (``isolate`` in mixing.audio), never in the web
server itself. Files go to the default storage (MEDIA_ROOT or S3) through Django's storage API only;
a file is deleted from storage once the database no longer points to it.
"""
import json
import logging
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max

from mixing import SAMPLE_RATE
from mixing.audio import (
    MAX_TRACKS,
    StemInfo,
    dedupe_names,
    extract_stems_zip,
    track_names_from_filenames,
    validate_stem,
)
from mixing.audio.validate import is_silent
from mixing.errors import PresetError, StemError
from mixing.params import MixParams
from mixing.tone.family import FAMILIES, family_from_name
from mixing.tone.stage import tone_unavailable
from webapp.core.errors import ApplicationError
from webapp.core.models import Job
from webapp.core.services import QUEUE_UNREACHABLE, job_cancel, job_create, job_enqueue_on_commit

from .models import MixVersion, Project, ProjectJob, Reference, Stem
from .owners import Owner
from .selectors import stems_ordered, version_get, version_latest

logger = logging.getLogger(__name__)

PROJECT_NAME_MAX_CHARS = 200
STEM_NAME_MAX_CHARS = 120
PRESET_MAX_BYTES = 1024 * 1024
# Child decoders run at once while validating one upload (a ZIP of stems).
VALIDATE_WORKERS = 4


def _clean_name(value, *, what: str, max_chars: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApplicationError(f"Give the {what} a name.", code="invalid_name")
    name = " ".join(value.split())
    if len(name) > max_chars:
        raise ApplicationError(f"The {what} name is longer than {max_chars} characters.", code="invalid_name")
    return name


def files_delete_on_commit(names: Iterable[str]) -> None:
    """Removes stored files once the transaction that stopped pointing to them has committed."""
    names = [name for name in names if name]

    def delete() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                # A file left behind costs storage, not correctness; the row is gone either way.
                logger.exception("could not delete %s from storage", name)

    transaction.on_commit(delete)


def _project_locked(project: Project) -> Project:
    """The project's row, locked until the transaction ends, with its last job.

    Only the project row: PostgreSQL cannot lock the nullable side of the outer join to last_job.
    """
    return Project.objects.select_for_update(of=("self",)).select_related("last_job").get(pk=project.pk)


def _inputs_check_unlocked(project: Project) -> None:
    """Refuses (409) a change to a project's stems or reference while one of its jobs is queued or running:
    the version that job makes must describe the inputs it was started from. Callers hold the project's
    lock (``_project_locked``), which ``_job_start`` takes too, so a job cannot start in between."""
    if project.last_job is not None and not project.last_job.is_finished:
        raise ApplicationError(
            "A mix of this project is queued or running; change its stems or reference once it has finished.",
            code="job_running", status=409,
        )


# Projects


def project_create(*, owner: Owner, name) -> Project:
    project = Project(
        name=_clean_name(name, what="project", max_chars=PROJECT_NAME_MAX_CHARS),
        owner_id=owner.user_id,
        visitor_id="" if owner.user_id is not None else owner.visitor_id,
    )
    project.full_clean()
    project.save()
    return project


def project_rename(*, project: Project, name) -> Project:
    project.name = _clean_name(name, what="project", max_chars=PROJECT_NAME_MAX_CHARS)
    project.save(update_fields=["name", "updated_at"])
    return project


def project_privacy_set(*, project: Project, delete_reference_audio) -> Project:
    """Whether the reference's audio is deleted once a mix has analysed it (a reference already deleted stays so)."""
    if not isinstance(delete_reference_audio, bool):
        raise ApplicationError("delete_reference_audio must be true or false.", code="invalid")
    project.delete_reference_audio = delete_reference_audio
    project.save(update_fields=["delete_reference_audio", "updated_at"])
    return project


def project_files(project: Project) -> list[str]:
    """Every storage key a project's rows point to."""
    names = [project.baseline_file.name]
    names += [stem.file.name for stem in Stem.objects.filter(project=project)]
    for reference in Reference.objects.filter(project=project):
        names += [reference.file.name, reference.features_file.name]
    for version in project.versions.only("wav24_file", "wav16_file", "flac_file", "stems_zip", "preview_zip"):
        names += [field.name for field in version.files]
    return [name for name in names if name]


@transaction.atomic
def project_delete(*, project: Project) -> None:
    """Deletes the project, its rows, its jobs and (after the commit) all of its files.

    A job still running for it finds the project gone and deletes what it wrote (webapp.studio.work).
    """
    files_delete_on_commit(project_files(project))
    job_ids = list(ProjectJob.objects.filter(project=project).values_list("job_id", flat=True))
    project.delete()
    Job.objects.filter(pk__in=job_ids).delete()


# Stems


@dataclass
class _Candidate:
    """One audio file of an upload, checked: ``info`` when usable, ``reason`` when not."""

    filename: str
    path: Path
    info: StemInfo | None = None
    reason: str = ""


def _write_upload(upload: UploadedFile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as local:
        for chunk in upload.chunks():
            local.write(chunk)
    return path


@dataclass
class _UploadBudget:
    """What the rest of one request may still add: audio files (MIXREF_UPLOAD_MAX_FILES, ZIP entries
    included) and bytes unpacked from ZIPs into the request's temporary folder
    (MIXREF_UPLOAD_MAX_UNPACKED_BYTES)."""

    files: int
    unpacked_bytes: int


def _upload_candidates(upload: UploadedFile, folder: Path, rejected: list[dict], budget: _UploadBudget,
                       uploads_after: int) -> list[_Candidate]:
    """The audio files of one upload: itself, or the files inside it when it is a ZIP.

    A ZIP's limits are checked from its central directory before anything is unpacked;
    ``uploads_after`` files of the request still need their share of the file cap.
    """
    filename = PurePath(upload.name or "upload").name
    if upload.size == 0:
        rejected.append({"filename": filename, "reason": "the file is empty."})
        return []
    if filename.lower().endswith(".zip"):
        archive = _write_upload(upload, folder / "upload.zip")
        try:
            extracted = extract_stems_zip(
                archive, folder / "unzipped", name=filename, max_files=max(0, budget.files - uploads_after),
                max_total_bytes=budget.unpacked_bytes,
            )
        except StemError as error:
            rejected.append({"filename": filename, "reason": error.reason})
            return []
        finally:
            archive.unlink()
        budget.unpacked_bytes -= sum(path.stat().st_size for path in extracted.paths)
        budget.files -= len(extracted.paths)
        rejected += [{"filename": entry.name, "reason": entry.reason} for entry in extracted.skipped]
        if not extracted.paths and not extracted.skipped:
            rejected.append({"filename": filename, "reason": "the archive holds no audio files."})
        return [_Candidate(path.name, path) for path in extracted.paths]
    budget.files -= 1
    # The decoder picks its reader by the user's extension, so the local copy keeps it.
    return [_Candidate(filename, _write_upload(upload, folder / f"upload{PurePath(filename).suffix.lower()}"))]


def _validate(candidate: _Candidate) -> _Candidate:
    try:
        candidate.info = validate_stem(
            candidate.path, name=candidate.filename, max_duration_s=settings.MIXREF_AUDIO_MAX_DURATION_S
        )
    except StemError as error:
        candidate.reason = error.reason
    return candidate


def stems_add(*, project: Project, uploads: list[UploadedFile]) -> tuple[list[Stem], list[dict]]:
    """Checks every uploaded file (ZIPs unpacked) and keeps the good ones as stems, in upload order.

    Returns the new stems and ``{"filename", "reason"}`` for each file rejected; one bad file never
    holds up the others. Track names come from the file names, made unique within the project.
    """
    # Before decoding anything; _stems_create checks again under the project's lock.
    _inputs_check_unlocked(Project.objects.select_related("last_job").get(pk=project.pk))
    rejected: list[dict] = []
    stored: list[Stem] = []
    budget = _UploadBudget(files=settings.MIXREF_UPLOAD_MAX_FILES,
                           unpacked_bytes=settings.MIXREF_UPLOAD_MAX_UNPACKED_BYTES)
    try:
        with tempfile.TemporaryDirectory(prefix="mixref-stems-") as folder:
            candidates = []
            for index, upload in enumerate(uploads):
                candidates += _upload_candidates(upload, Path(folder) / str(index), rejected, budget,
                                                 uploads_after=len(uploads) - index - 1)
            # Files past the project's room are not worth decoding; _stems_create checks the room
            # again under the project's lock.
            room = max(0, MAX_TRACKS - Stem.objects.filter(project=project).count())
            rejected += [_track_limit_reject(candidate.filename) for candidate in candidates[room:]]
            candidates = candidates[:room]
            with ThreadPoolExecutor(max_workers=VALIDATE_WORKERS) as pool:
                checked = list(pool.map(_validate, candidates))
            for candidate in checked:
                if candidate.info is None:
                    rejected.append({"filename": candidate.filename, "reason": candidate.reason})
                else:
                    stored.append(_stem_file_store(candidate))
        return _stems_create(project, stored, rejected), rejected
    except BaseException:
        for stem in stored:
            default_storage.delete(stem.file.name)
        raise


def _track_limit_reject(filename: str) -> dict:
    return {"filename": filename, "reason": f"the project already has the maximum of {MAX_TRACKS} tracks."}


def _stem_file_store(candidate: _Candidate) -> Stem:
    """An unsaved Stem whose file is already in storage (under a uuid key)."""
    info = candidate.info
    stem = Stem(
        filename=candidate.filename[:255],
        channels=info.channels,
        duration_s=info.duration_s,
        sample_rate=info.source_sample_rate_hz,
        silent=is_silent(info.peak_dbfs),
    )
    with candidate.path.open("rb") as local:
        stem.file.save(candidate.filename, File(local), save=False)
    return stem


@transaction.atomic
def _stems_create(project: Project, stems: list[Stem], rejected: list[dict]) -> list[Stem]:
    # Locking the project row serializes parallel uploads to one project (positions, names, the cap).
    _inputs_check_unlocked(_project_locked(project))
    existing = list(Stem.objects.filter(project=project).order_by("position"))
    room = max(0, MAX_TRACKS - len(existing))
    kept, refused = stems[:room], stems[room:]
    rejected += [_track_limit_reject(stem.filename) for stem in refused]
    files_delete_on_commit(stem.file.name for stem in refused)
    names = _session_names(project, existing, kept)
    position = (Stem.objects.filter(project=project).aggregate(last=Max("position"))["last"] or 0) + 1
    for offset, (stem, name) in enumerate(zip(kept, names, strict=True)):
        stem.project = project
        stem.name = name[:STEM_NAME_MAX_CHARS]
        stem.family = family_from_name(stem.name) or ""
        stem.position = position + offset
        stem.full_clean()
        stem.save()
    return kept


def _auto_names(filenames: list[str]) -> list[str]:
    return [name[:STEM_NAME_MAX_CHARS] for name in dedupe_names(track_names_from_filenames(filenames))]


def _session_names(project: Project, existing: list[Stem], new: list[Stem]) -> list[str]:
    """Names for the ``new`` stems, from the file names of the whole session less their shared words.

    Files go up one per request, so the words all names share are known only as the session grows:
    until the first mix, the earlier stems still named as their files suggested are renamed with them.
    A name the user gave, and every name once a version exists (presets match tracks by name), stays.
    """
    if MixVersion.objects.filter(project=project).exists():
        taken = [stem.name for stem in existing]
        return dedupe_names(taken + track_names_from_filenames([stem.filename for stem in new]))[len(taken):]
    before = _auto_names([stem.filename for stem in existing])
    after = _auto_names([stem.filename for stem in existing + new])
    automatic = [index for index, stem in enumerate(existing) if stem.name == before[index]]
    given = [stem.name for index, stem in enumerate(existing) if index not in automatic]
    # The new set's automatic names, made unique against the names the user gave.
    order = automatic + list(range(len(existing), len(existing) + len(new)))
    unique = dedupe_names(given + [after[index] for index in order])[len(given):]
    for index, name in zip(automatic, unique, strict=False):
        stem = existing[index]
        if stem.name != name:
            stem.name = name
            stem.family = stem.family or family_from_name(name) or ""
            stem.save(update_fields=["name", "family", "updated_at"])
    return unique[len(automatic):]


@transaction.atomic
def stem_rename(*, stem: Stem, name) -> Stem:
    name = _clean_name(name, what="track", max_chars=STEM_NAME_MAX_CHARS)
    # A running job's version names its tracks; presets match tracks by these names.
    _inputs_check_unlocked(_project_locked(stem.project))
    # Presets match tracks by name, so two tracks of a project never share one.
    taken = Stem.objects.filter(project_id=stem.project_id, name__iexact=name).exclude(pk=stem.pk).exists()
    if taken:
        raise ApplicationError(f"Another track is already called {name!r}.", code="name_taken")
    stem.name = name
    stem.save(update_fields=["name", "updated_at"])
    return stem


@transaction.atomic
def stem_family_set(*, stem: Stem, family) -> Stem:
    """The user's choice of ``stem``'s instrument family (one of :data:`mixing.tone.family.FAMILIES`): which
    neural tone model it uses from the next render on."""
    if family not in FAMILIES:
        raise ApplicationError(f"'family' must be one of {', '.join(FAMILIES)}; got {family!r}.",
                               code="invalid_request")
    # A running job reads the families it renders with.
    _inputs_check_unlocked(_project_locked(stem.project))
    stem.family = family
    stem.save(update_fields=["family", "updated_at"])
    return stem


@transaction.atomic
def stem_delete(*, stem: Stem) -> None:
    _inputs_check_unlocked(_project_locked(stem.project))
    files_delete_on_commit([stem.file.name])
    stem.delete()


# Reference


def reference_set(*, project: Project, upload: UploadedFile) -> Reference:
    """Checks the uploaded reference song and makes it the project's, replacing any earlier one.

    Raises StemError (400) naming the file when it is not usable.
    """
    import torch

    from mixing.audio.decode import decode_isolated
    from mixing.loudness import integrated_loudness_lufs
    from mixing.pipeline import as_stereo

    filename = PurePath(upload.name or "reference").name
    if upload.size == 0:
        raise StemError(filename, "the file is empty.")
    # Before decoding; checked again below under the project's lock.
    _inputs_check_unlocked(Project.objects.select_related("last_job").get(pk=project.pk))
    with tempfile.TemporaryDirectory(prefix="mixref-reference-") as folder:
        local = _write_upload(upload, Path(folder) / f"reference{PurePath(filename).suffix.lower()}")
        decoded = decode_isolated(
            local, name=filename, max_duration_s=settings.MIXREF_AUDIO_MAX_DURATION_S, keep_audio=True
        )
        # Measured as the mix uses it: a mono reference plays on both channels.
        loudness_lufs = integrated_loudness_lufs(as_stereo(torch.from_numpy(decoded.audio)), SAMPLE_RATE)
        if loudness_lufs == float("-inf"):
            raise StemError(filename, "it is too quiet to measure (below -70 LUFS).")
        reference = Reference(
            project=project,
            filename=filename[:255],
            channels=decoded.info.channels,
            duration_s=decoded.info.duration_s,
            sample_rate=decoded.info.source_sample_rate_hz,
            loudness_lufs=loudness_lufs,
        )
        with local.open("rb") as stored:
            reference.file.save(filename, File(stored), save=False)
    try:
        with transaction.atomic():
            _inputs_check_unlocked(_project_locked(project))
            old = Reference.objects.filter(project=project).first()
            if old is not None:
                files_delete_on_commit([old.file.name])
                old.delete()
            reference.full_clean()
            reference.save(force_insert=True)
    except BaseException:
        default_storage.delete(reference.file.name)
        raise
    return reference


# Jobs


def _job_start(project: Project, kind: str, request: dict) -> Job:
    """Creates the job row and its link, and enqueues its task once the rows are committed."""
    with transaction.atomic():
        locked = _project_locked(project)
        if locked.last_job is not None and not locked.last_job.is_finished:
            raise ApplicationError(
                "Another mix of this project is still running; wait for it to finish.", code="job_running", status=409
            )
        if not Stem.objects.filter(project=project).exists():
            raise ApplicationError("Add at least one stem first.", code="no_stems", status=409)
        if not Reference.objects.filter(project=project).exists():
            raise ApplicationError("Add a reference song first.", code="no_reference", status=409)
        job = job_create(kind=kind)
        ProjectJob.objects.create(job=job, project=project, request=request)
        Project.objects.filter(pk=project.pk).update(last_job=job)
        job_enqueue_on_commit(job=job)
    # Outside any other transaction the message has been sent (or refused) by now: a job that could not
    # be queued answers 503 instead of 202 "queued".
    job.refresh_from_db(fields=["status", "error"])
    if job.status == Job.Status.FAILED and job.error == QUEUE_UNREACHABLE:
        raise ApplicationError(QUEUE_UNREACHABLE, code="queue_unavailable", status=503)
    return job


def project_job_cancel(*, job: Job) -> Job:
    """Cancels a queued or running job of a project (one whose worker is gone, say); its inputs may change
    again at once."""
    with transaction.atomic():
        # The lock that edits and _version_save take: the worker either saved its version before or will not.
        _project_locked(ProjectJob.objects.get(job=job).project)
        return job_cancel(job=job)


def mix_start(*, project: Project, method="auto") -> Job:
    if method != "auto":
        raise ApplicationError(f"Unknown mix method {method!r}; use 'auto'.", code="invalid_method")
    return _job_start(project, Job.Kind.MIX, {"method": MixVersion.Method.AUTO})


def _stem_ids(value, *, field: str, known: set[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApplicationError(f"'{field}' must be a list of stem ids.", code="invalid_request")
    unknown = [item for item in value if item not in known]
    if unknown:
        raise ApplicationError(
            f"'{field}' names a stem this project does not have: {unknown[0]}.", code="invalid_request"
        )
    return list(dict.fromkeys(value))


def _preset_checked(preset, track_names: list[str], *, source: str = "") -> dict:
    """The preset as it will be rendered (tracks by name, then position); 400 with the schema error otherwise.

    ``source`` (a file name) prefixes the message.
    """
    try:
        return MixParams.from_preset(preset, track_names=track_names).to_preset(track_names)
    except PresetError as error:
        message = f"{source}: {error}" if source else str(error)
        raise ApplicationError(message, code="invalid_preset") from None


def _tone_checked(preset: dict, stems: list[Stem], *, source: str = "") -> dict:
    """``preset`` (checked, tracks in stem order) unless it turns the neural tone on for a track whose family has
    no model: 400 naming the track and the reason."""
    for stem, track in zip(stems, preset["tracks"], strict=True):
        amount_pct = track["params"]["tone_amount_pct"]
        reason = tone_unavailable(stem.family or None) if amount_pct > 0 else None
        if reason is not None:
            prefix = f"{source}: " if source else ""
            raise ApplicationError(f"{prefix}{stem.name}: the neural tone is at {amount_pct:g} % but there is "
                                   f"{reason}; set it to 0 %.", code="invalid_preset")
    return preset


def render_start(*, project: Project, params, muted=None, solo=None, base_version=None,
                 strengths: dict | None = None) -> Job:
    """Queues a re-render with ``params`` (a preset), muted and soloed stem ids; 400 names the problem.
    ``strengths``: the match strengths (checked) that made ``params``, kept with the version."""
    stems = stems_ordered(project=project)
    preset = _tone_checked(_preset_checked(params, [stem.name for stem in stems]), stems)
    known = {str(stem.id) for stem in stems}
    request = {
        "method": MixVersion.Method.MANUAL,
        "params": preset,
        "muted": _stem_ids(muted, field="muted", known=known),
        "solo": _stem_ids(solo, field="solo", known=known),
        "base_version": None,
        "strengths": strengths or {},
    }
    if base_version is not None:
        if isinstance(base_version, bool) or not isinstance(base_version, int):
            raise ApplicationError("'base_version' must be a version number.", code="invalid_request")
        request["base_version"] = version_get(project=project, number=base_version).number
    return _job_start(project, Job.Kind.RENDER, request)


def stems_export_start(*, project: Project, version: MixVersion) -> Job:
    """Starts a job that stores ``version``'s processed stems as one ZIP (``version.stems_zip``)."""
    return _job_start(project, Job.Kind.STEMS, {"version": version.number})


def preview_start(*, project: Project, version: MixVersion) -> Job:
    """Starts a stems job that stores ``version``'s live preview files (``version.preview_zip``)."""
    return _job_start(project, Job.Kind.STEMS, {"version": version.number, "set": "preview"})


def strength_start(*, project: Project, strengths_pct, muted=None, solo=None, base_version=None) -> Job:
    """Queues a render of the match strengths ``strengths_pct`` (dimension -> 0..100 %, missing ones 100 %) of
    the automatic mix behind ``base_version`` (default the latest version): each dimension moved that far from
    the mix's neutral start to its full match (:func:`mixing.strength.apply_strength`)."""
    from mixing.strength import apply_strength, check_strengths

    if not isinstance(strengths_pct, dict):
        raise ApplicationError("'strengths_pct' must be an object of percentages by dimension.",
                               code="invalid_request")
    for dimension, value in strengths_pct.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise ApplicationError(f"The {dimension} strength must be a percentage from 0 to 100, got {value!r}.",
                                   code="invalid_request")
    try:
        strengths = check_strengths({dimension: value / 100.0 for dimension, value in strengths_pct.items()})
    except ValueError as error:
        raise ApplicationError(f"{str(error).capitalize()}.", code="invalid_request") from None
    if base_version is not None and (isinstance(base_version, bool) or not isinstance(base_version, int)):
        raise ApplicationError("'base_version' must be a version number.", code="invalid_request")
    base = version_get(project=project, number=base_version) if base_version is not None else version_latest(
        project=project)
    if base is None:
        raise ApplicationError("Mix the project first: the match strength moves its automatic mix.",
                               code="no_version", status=409)
    if not base.neutral_params:
        raise ApplicationError("This mix was made before the match strength existed; mix again to use it.",
                               code="no_neutral_mix", status=409)
    names = [stem.name for stem in stems_ordered(project=project)]
    neutral, full = (MixParams.from_preset(preset, track_names=names) for preset in (base.neutral_params,
                                                                                      base.auto_params))
    params = apply_strength(neutral, full, strengths)
    # The automatic mix never turns the neural tone on: the user's amounts come from the version they move.
    for values, own in zip(params.tracks, MixParams.from_preset(base.params, track_names=names).tracks, strict=True):
        values["tone_amount_pct"] = own["tone_amount_pct"]
    return render_start(project=project, params=params.to_preset(names), muted=muted, solo=solo,
                        base_version=base.number, strengths=strengths)


def preset_read(upload: UploadedFile) -> dict:
    """The JSON of an uploaded preset file; 400 saying why it cannot be read."""
    filename = PurePath(upload.name or "preset.json").name
    if upload.size > PRESET_MAX_BYTES:
        raise ApplicationError(
            f"{filename} is larger than {PRESET_MAX_BYTES // 1024} kB; a preset is a small JSON file.",
            code="invalid_preset",
        )
    try:
        return json.loads(upload.read().decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError included
        raise ApplicationError(f"{filename} is not valid JSON ({error}).", code="invalid_preset") from None


def preset_start(*, project: Project, upload: UploadedFile) -> Job:
    """Queues a render of the uploaded preset, its tracks matched to the stems by name, then position:
    a render job like any other, whose version says it came from a preset."""
    filename = PurePath(upload.name or "preset.json").name
    stems = stems_ordered(project=project)
    preset = _tone_checked(_preset_checked(preset_read(upload), [stem.name for stem in stems], source=filename),
                           stems, source=filename)
    request = {"method": MixVersion.Method.PRESET, "params": preset, "muted": [], "solo": [], "base_version": None}
    return _job_start(project, Job.Kind.RENDER, request)

