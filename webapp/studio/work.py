"""Services the worker runs for the studio's jobs: the automatic mix, re-renders and presets.

Each takes a job id and a ``report(progress, stage)`` callback (workers.tasks.job_run) and returns
``{"version": n}``. Running a job again is safe: a job that already made its version returns it.

The mixing is :class:`mixing.session.MixSession`'s; this module fetches the rows, hands the stored
files to the session and stores what it makes. Each worker process keeps the sessions of the projects
it worked on last (as many as fit in MIXREF_RENDER_CACHE_MAX_BYTES; a miss decodes the stems again), so that a
re-render only re-processes the tracks whose settings changed and its analysis measures only its own
mix against the kept reference and baseline.
"""
import dataclasses
import hashlib
import logging
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePath

import numpy as np
import torch
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.db.models.fields.files import FieldFile

from mixing.advice import AdviceMemo, advise
from mixing.params import MixParams
from mixing.preview import write_preview_zip
from mixing.session import MixSession
from webapp.core.errors import ApplicationError
from webapp.core.models import Job
from webapp.core.services import ProgressReport

from .charts import chart_data, comparison_chart_data
from .models import MixVersion, Project, ProjectJob, Reference, Stem
from .selectors import stems_ordered
from .services import files_delete_on_commit

logger = logging.getLogger(__name__)

STAGE_MAX_CHARS = 200


@dataclasses.dataclass
class _Session:
    """A project's :class:`MixSession` as one worker process holds it.

    ``key``: the stored files its audio came from. ``comparison_charts``: the reference's and baseline's
    chart data (``comparison_chart_data``), made with the session's first version and the same for all.
    ``advice_memo``: what advice measured for the last version, so the next measures only what changed.
    """

    key: tuple
    engine: MixSession
    comparison_charts: dict | None = None
    advice_memo: AdviceMemo = dataclasses.field(default_factory=AdviceMemo)


_sessions: "OrderedDict[str, _Session]" = OrderedDict()


@contextmanager
def _local_paths(fields: Sequence[FieldFile]) -> Iterator[list[Path]]:
    """Copies of stored files in a private temporary folder, read through the storage even when it is a local
    folder: a worker shares no disk with the web server or other workers (docs/DEPLOYING.md)."""
    with tempfile.TemporaryDirectory(prefix="mixref-job-") as folder:
        paths = []
        for index, field in enumerate(fields):
            local = Path(folder) / f"{index}{PurePath(field.name).suffix}"
            with field.storage.open(field.name, "rb") as stored, local.open("wb") as copy:
                shutil.copyfileobj(stored, copy)
            paths.append(local)
        yield paths


def _session_key(stems: Sequence[Stem], reference: Reference) -> tuple:
    # The features' name once the audio is deleted: the same reference, so a cached session stays valid.
    return tuple((str(stem.id), stem.file.name) for stem in stems), reference.features_file.name or reference.file.name


def _session_for(project: Project, stems: list[Stem], reference: Reference, report: ProgressReport) -> _Session:
    key = _session_key(stems, reference)
    cached = _sessions.get(str(project.id))
    if cached is not None and cached.key == key:
        _sessions.move_to_end(str(project.id))
        _families_set(cached.engine, stems)
        return cached
    # Dropped before loading, so that two versions of a project's audio are never held at once.
    _sessions.pop(str(project.id), None)
    _stored_files_check(stems, reference)
    report(0.02, f"loading {len(stems)} stems and the reference")
    kept = not reference.file
    with _local_paths([stem.file for stem in stems] + [reference.features_file if kept else reference.file]) as paths:
        engine = MixSession.from_files(
            paths[:-1], None if kept else paths[-1], filenames=[stem.filename for stem in stems],
            names=[stem.name for stem in stems], reference_name=reference.filename,
            max_duration_s=settings.MIXREF_AUDIO_MAX_DURATION_S,
            reference_features=torch.load(paths[-1], weights_only=True) if kept else None,
        )
    session = _Session(key, engine, comparison_charts=reference.comparison_charts or None if kept else None)
    _sessions[str(project.id)] = session
    _families_set(engine, stems)
    return session


def _families_set(engine: MixSession, stems: list[Stem]) -> None:
    """The tracks' families for the neural tone stage as stored now (the user may have changed one since the
    last job); a blank one gets the session's guess from the sound, stored so that the studio shows it."""
    chosen = engine.set_families([stem.family or None for stem in stems])
    for stem, family in zip(stems, chosen, strict=True):
        if not stem.family:
            Stem.objects.filter(pk=stem.pk, family="").update(family=family)
            stem.family = family


def held_bytes(root) -> int:
    """Bytes of the tensors and arrays reachable from ``root`` through attributes, lists, tuples and dicts,
    each tensor storage counted once (views share their base's)."""
    storages, visited, total = set(), set(), 0
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in visited or isinstance(item, (str, bytes, int, float, bool, type(None), type)):
            continue
        visited.add(id(item))
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            if (storage.device, storage.data_ptr()) not in storages:
                storages.add((storage.device, storage.data_ptr()))
                total += storage.nbytes()
        elif isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif isinstance(item, torch.nn.Module):
            pending.extend([*item.parameters(), *item.buffers()])
        elif hasattr(item, "__dict__") and not callable(item):
            pending.extend(vars(item).values())
    return total


def _cache_trim() -> None:
    """Forgets the least recently used sessions until the rest fit in MIXREF_RENDER_CACHE_MAX_BYTES; a
    session bigger than that on its own is not kept either. Run after a job, when its session (renderer
    caches included) is at its largest."""
    sizes = {project_id: held_bytes(session.engine) for project_id, session in _sessions.items()}
    total_bytes = sum(sizes.values())
    for project_id in list(_sessions):  # oldest first
        if total_bytes <= settings.MIXREF_RENDER_CACHE_MAX_BYTES:
            break
        del _sessions[project_id]
        total_bytes -= sizes[project_id]


def _stored_files_check(stems: Sequence[Stem], reference: Reference) -> None:
    """Says which stored copy is gone, so the user is not told that the file they uploaded was bad."""
    stored = [(stem.file, f"the track {stem.name!r} ({stem.filename})", "delete the track and add it again")
              for stem in stems]
    stored.append((reference.file or reference.features_file, f"the reference ({reference.filename})",
                   "upload the reference again"))
    for field, what, remedy in stored:
        if not field.storage.exists(field.name):
            logger.error("stored file %s of %s is missing", field.name, what)
            raise ApplicationError(f"The server's stored copy of {what} is missing; the file you uploaded was "
                                   f"fine. To mix again, {remedy}.", code="stored_file_missing")


@contextmanager
def _dropped_on_error(project: Project) -> Iterator[None]:
    """Forgets the project's session when rendering fails: its renderer may be left half updated."""
    try:
        yield
    except BaseException:
        _sessions.pop(str(project.id), None)
        raise


def _project_job(job_id: str) -> ProjectJob:
    project_job = ProjectJob.objects.select_related("project", "job").filter(job_id=job_id).first()
    if project_job is None:
        raise ApplicationError("The project was deleted.", code="not_found", status=404)
    return project_job


def _reference(project: Project) -> Reference:
    reference = Reference.objects.filter(project=project).first()
    if reference is None:
        raise ApplicationError("The project has no reference song any more; add one and mix again.")
    return reference


def _stems(project: Project) -> list[Stem]:
    stems = stems_ordered(project=project)
    if not stems:
        raise ApplicationError("The project has no stems any more; add some and mix again.")
    return stems


def _stage(event: dict) -> str:
    text = f"{event['stage']}: {event['detail']}" if event.get("detail") else event["stage"]
    return text[:STAGE_MAX_CHARS]


def _version_made_by(job_id: str) -> dict | None:
    """The result of a job that already made its version: running a job twice makes one version."""
    made = MixVersion.objects.filter(job_id=job_id).first()
    return {"version": made.number} if made is not None else None


def project_mix_run(*, job_id: str, report: ProgressReport) -> dict:
    """The automatic mix of the job's project as a new version."""
    project_job = _project_job(job_id)
    if (made := _version_made_by(job_id)) is not None:
        return made
    project = project_job.project
    stems = _stems(project)
    reference = _reference(project)
    if not reference.file:
        raise ApplicationError("The reference's audio was deleted after analysis (the project's privacy option), "
                               "and an automatic mix needs it: upload the reference again. Re-renders still work.")
    session = _session_for(project, stems, reference, report)

    def progress(event: dict) -> None:
        report(0.1 + 0.7 * event["progress"], _stage(event))

    with _dropped_on_error(project):
        # The cached stems keep the names they were loaded with; the expert start reads the current ones.
        result = session.engine.mix(
            method="auto", time_budget_s=settings.MIXREF_FIT_TIME_BUDGET_S, iterations=settings.MIXREF_FIT_ITERATIONS,
            progress=progress, track_names=[stem.name for stem in stems],
        )
    names = [stem.name for stem in stems]
    auto_params = result.params.to_preset(names)
    made = _version_finish(
        project_job, stems, session, method=MixVersion.Method.AUTO, params=result.params, auto_params=auto_params,
        neutral_params=session.engine.neutral_params(names).to_preset(names),
        muted=[], solo=[], audio=result.audio, report=report, notes=result.warnings,
    )
    _reference_audio_drop(project, stems, session)
    return made


def project_render_run(*, job_id: str, report: ProgressReport) -> dict:
    """A re-render or an applied preset (the job's request holds the method, the preset, muted and soloed stems)."""
    project_job = _project_job(job_id)
    if (made := _version_made_by(job_id)) is not None:
        return made
    project = project_job.project
    request = project_job.request
    stems = _stems(project)
    names = [stem.name for stem in stems]
    ids = [str(stem.id) for stem in stems]
    session = _session_for(project, stems, _reference(project), report)
    params = MixParams.from_preset(request["params"], track_names=names)
    muted = [stem_id for stem_id in ids if stem_id in request.get("muted", [])]
    solo = [stem_id for stem_id in ids if stem_id in request.get("solo", [])]
    engine = session.engine
    choice = {"muted": [ids.index(stem_id) for stem_id in muted], "solo": [ids.index(stem_id) for stem_id in solo]}
    report(0.3, f"rendering {sum(engine.playing(**choice))} of {len(ids)} tracks")
    renderer = engine.renderer
    processed_before = renderer.processed_tracks
    with _dropped_on_error(project):
        audio = engine.render(params, **choice)
    logger.info("job %s re-processed %d tracks", job_id, renderer.processed_tracks - processed_before)
    auto_params, neutral_params = _base_presets(project, request.get("base_version"), names)
    made = _version_finish(
        project_job, stems, session, method=request["method"], params=params,
        auto_params=auto_params or params.to_preset(names), neutral_params=neutral_params,
        strengths=request.get("strengths", {}), muted=muted, solo=solo, audio=audio, report=report,
    )
    _reference_audio_drop(project, stems, session)
    return made


def _reference_audio_drop(project: Project, stems: list[Stem], session: _Session) -> None:
    """When the project asks for it, keeps the analysed reference's features (and its chart data) and deletes
    its audio; the cached session forgets the audio too."""
    project.refresh_from_db(fields=["delete_reference_audio"])
    reference = Reference.objects.filter(project=project).first()
    if not project.delete_reference_audio or reference is None or not reference.file:
        return
    engine = session.engine
    with tempfile.TemporaryDirectory(prefix="mixref-reference-") as folder:
        path = Path(folder) / "reference-features.pt"
        torch.save(engine.reference_features(), path)
        _store(reference.features_file, path)
    audio_name = reference.file.name
    # Only if the reference is still the one analysed: a new upload keeps its audio until its own analysis.
    dropped = Reference.objects.filter(pk=reference.pk, file=audio_name).update(
        file="", features_file=reference.features_file.name, comparison_charts=session.comparison_charts or {})
    if not dropped:
        _delete([reference.features_file.name])
        return
    _delete([audio_name])  # no row points to it any more
    reference.file.name = ""
    engine.forget_reference_audio()
    session.key = _session_key(stems, reference)


def _base_presets(project: Project, base_version: int | None, names: list[str]) -> tuple[dict | None, dict]:
    """The automatic mix's preset behind ``base_version`` (else the latest version) and its neutral start (empty
    when that version kept none), for these tracks; (None, {}) before any version."""
    versions = MixVersion.objects.filter(project=project).only("auto_params", "neutral_params").order_by("-number")
    base = versions.filter(number=base_version).first() if base_version is not None else None
    base = base or versions.first()
    if base is None:
        return None, {}
    presets = [MixParams.from_preset(preset, track_names=names).to_preset(names) if preset else {}
               for preset in (base.auto_params, base.neutral_params)]
    return presets[0], presets[1]


def _store(field: FieldFile, path: Path) -> None:
    with path.open("rb") as local:
        field.save(path.name, File(local), save=False)


def _version_finish(
    project_job: ProjectJob, stems: list[Stem], session: _Session, *, method: str, params: MixParams,
    auto_params: dict, muted: list[str], solo: list[str], audio: torch.Tensor, report: ProgressReport,
    notes: Sequence[str] = (), neutral_params: dict | None = None, strengths: dict | None = None,
) -> dict:
    """Measures the mix against the reference and the baseline, advises toward the automatic mix
    (``analysis["advice"]``, :func:`mixing.advice.advise`), stores its files and its version.

    ``notes``: what the mixing wants the user to know (a mono reference, padded stems), kept in the analysis.
    """
    project = project_job.project
    engine = session.engine
    names = [stem.name for stem in stems]
    report(0.82, "measuring the mix against the reference and the equal-loudness baseline")
    analysis = engine.analyse(audio, params, track_names=names, track_ids=[str(stem.id) for stem in stems])
    analysis["notes"] = list(notes)
    report(0.86, "advice toward the automatic mix")
    analysis["advice"] = advise(engine, params, MixParams.from_preset(auto_params, track_names=names),
                                current_audio=audio, track_names=names, memo=session.advice_memo).to_dict()
    if session.comparison_charts is None:
        session.comparison_charts = comparison_chart_data(engine.reference, engine.baseline, engine.sample_rate)
    charts = chart_data(audio, engine.reference, engine.baseline, engine.sample_rate,
                        comparison=session.comparison_charts)
    report(0.9, "reading what each track's EQ and compressor did")
    ids = [str(stem.id) for stem in stems]
    charts["explain"] = engine.explain(params, analysis, muted=[ids.index(stem_id) for stem_id in muted],
                                       solo=[ids.index(stem_id) for stem_id in solo], track_names=names)
    report(0.93, "saving the audio")
    version = MixVersion(
        method=method, job_id=project_job.job_id, params=params.to_preset(names), auto_params=auto_params,
        neutral_params=neutral_params or {}, strengths=strengths or {}, muted=muted, solo=solo,
        loudness_lufs=analysis["loudness_lufs"]["mix"],
        true_peak_dbtp=analysis["true_peak_dbtp"]["mix"], af_loss=(analysis["af_loss"]["mix"] or {}).get("total"),
        analysis=analysis, chart_data=charts,
    )
    signature = hashlib.sha256(repr(session.key).encode()).hexdigest()
    baseline_name = None
    written = []
    try:
        with tempfile.TemporaryDirectory(prefix="mixref-version-") as folder:
            folder = Path(folder)
            mix_files = [
                (version.wav24_file, folder / "PCM_24-mix.wav", "wav24"),
                (version.wav16_file, folder / "PCM_16-mix.wav", "wav16"),
                (version.flac_file, folder / "PCM_24-mix.flac", "flac"),
            ]
            exports = [(audio, path, format_name) for _, path, format_name in mix_files]
            new_baseline = project.baseline_signature != signature or not project.baseline_file
            if new_baseline:
                exports.append((engine.baseline, folder / "baseline.wav", "wav16"))
            paths = engine.export(exports)
            for (field, *_), path in zip(mix_files, paths[: len(mix_files)], strict=True):
                _store(field, path)
                written.append(field.name)
            if new_baseline:
                path = paths[-1]
                with path.open("rb") as local:
                    key = Project._meta.get_field("baseline_file").generate_filename(project, path.name)
                    baseline_name = default_storage.save(key, File(local))
                written.append(baseline_name)
        number = _version_save(project, version, baseline_name, signature, analysis["loudness_lufs"]["baseline"])
    except _AlreadyMade as made:
        _delete(written)
        return {"version": made.number}
    except BaseException:
        _delete(written)
        raise
    _cache_trim()
    return {"version": number}


def project_stems_run(*, job_id: str, report: ProgressReport) -> dict:
    """The processed stems of the version the job's request names, stored as one ZIP with that version: the
    stems ZIP for download, or with ``"set": "preview"`` the live preview's files (mixing.preview)."""
    project_job = _project_job(job_id)
    project = project_job.project
    number = project_job.request["version"]
    preview = project_job.request.get("set") == "preview"
    field_name = "preview_zip" if preview else "stems_zip"
    version = MixVersion.objects.filter(project=project, number=number).first()
    if version is None:
        raise ApplicationError(f"Version {number} was deleted.", code="not_found", status=404)
    if getattr(version, field_name):
        return {"version": number, "stems": True, "set": field_name}
    stems = _stems(project)
    names = [stem.name for stem in stems]
    session = _session_for(project, stems, _reference(project), report)
    params = MixParams.from_preset(version.params, track_names=names)
    report(0.3, f"processing {len(stems)} tracks")
    with _dropped_on_error(project), tempfile.TemporaryDirectory(prefix="mixref-stems-") as folder:
        if preview:
            path = write_preview_zip(session.engine, params, Path(folder) / f"preview-v{number}.zip", names=names)
        else:
            path = session.engine.export_stems_zip(params, Path(folder) / f"stems-v{number}.zip", names=names)
        report(0.9, "saving the stems")
        stored = getattr(version, field_name)
        _store(stored, path)
    with transaction.atomic():
        saved = MixVersion.objects.filter(pk=version.pk, **{field_name: ""}).update(**{field_name: stored.name})
    if not saved:  # a repeated message stored its ZIP first
        _delete([stored.name])
    _cache_trim()
    return {"version": number, "stems": True, "set": field_name}


def _delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


class _AlreadyMade(Exception):
    """Another run of the same job saved its version first (a repeated broker message)."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number = number


@transaction.atomic
def _version_save(project: Project, version: MixVersion, baseline_name: str | None, signature: str,
                  baseline_loudness_lufs: float | None) -> int:
    """Gives the version the project's next number and saves it (and a new baseline); returns the number.

    Raises _AlreadyMade when this job saved a version before (a repeated message): that one wins.
    """
    locked = Project.objects.select_for_update().filter(pk=project.pk).first()
    if locked is None:
        raise ApplicationError("The project was deleted while it was being mixed.", code="not_found", status=404)
    made = MixVersion.objects.filter(job_id=version.job_id).first()
    if made is not None:
        raise _AlreadyMade(made.number)
    # Under the project's lock, which edits take too: a cancelled job's inputs may change from now on.
    if not Job.objects.filter(pk=version.job_id, status=Job.Status.RUNNING).exists():
        raise ApplicationError("The job was cancelled before its version was saved.", code="job_cancelled")
    version.project = locked
    version.number = (MixVersion.objects.filter(project=locked).aggregate(last=Max("number"))["last"] or 0) + 1
    version.save()
    if baseline_name:
        files_delete_on_commit([locked.baseline_file.name])
        locked.baseline_file.name = baseline_name
        locked.baseline_signature = signature
        locked.baseline_loudness_lufs = baseline_loudness_lufs
        locked.save(update_fields=["baseline_file", "baseline_signature", "baseline_loudness_lufs", "updated_at"])
    return version.number

