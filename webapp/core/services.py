"""Writes to Job rows and starting their tasks. Every update is one conditional UPDATE, so a job
that has finished stays finished however many copies of its message a broker delivers."""
import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp.config.celery import JOB_TASKS, app

from .models import Job

logger = logging.getLogger(__name__)

#: Called by a job's work as ``report(progress, stage)``: progress a fraction 0..1, stage for people.
ProgressReport = Callable[[float, str], None]

_UNFINISHED = [Job.Status.QUEUED, Job.Status.RUNNING]


def job_create(*, kind: str) -> Job:
    return Job.objects.create(kind=kind)


def job_enqueue_on_commit(*, job: Job) -> None:
    """Sends the job's task to the broker once the current transaction commits, or a fast worker
    could look for rows it cannot see yet. The task is named, not imported: the web app never
    loads the worker's code."""
    job_id, task_name = str(job.id), JOB_TASKS[job.kind]

    def send() -> None:
        try:
            app.send_task(task_name, args=[job_id])
        except Exception:
            # The job row would otherwise wait for a message that never comes, and block its project.
            logger.exception("could not enqueue job %s", job_id)
            job_fail(job_id=job_id, error=QUEUE_UNREACHABLE)

    transaction.on_commit(send)


QUEUE_UNREACHABLE = "The job queue cannot be reached right now; try again in a minute."
CANCELLED = "Cancelled."


def job_cancel(*, job: Job) -> Job:
    """Ends an unfinished job as failed ("Cancelled."), for a user whose job is stuck; a finished job stays
    as it is. A worker still running it finds the row finished and saves nothing (webapp.studio.work)."""
    job_fail(job_id=str(job.id), error=CANCELLED)
    job.refresh_from_db()
    return job


def job_claim(*, job_id: str, max_attempts: int) -> Job | None:
    """Marks the job running and counts the attempt; None when it must not run.

    A job is skipped when it has already finished (a duplicate message) and failed when this
    attempt is one more than ``max_attempts`` (each earlier attempt killed its worker).
    """
    started = Job.objects.filter(pk=job_id, status__in=_UNFINISHED).update(
        status=Job.Status.RUNNING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not started:
        logger.info("job %s is finished or missing; nothing to do", job_id)
        return None
    job = Job.objects.get(pk=job_id)
    if job.attempts > max_attempts:
        job_fail(
            job_id=job_id,
            error=f"Gave up after {max_attempts} attempts: the job stopped its worker each time.",
        )
        return None
    return job


def job_progress_set(*, job_id: str, progress: float, stage: str, stage_s: dict[str, float] | None = None) -> None:
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be within 0..1, got {progress}")
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
        progress=progress, stage=stage, updated_at=timezone.now(), **_stage_times(stage_s)
    )


def job_succeed(*, job_id: str, result: dict, stage_s: dict[str, float] | None = None) -> None:
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
        status=Job.Status.SUCCEEDED, progress=1.0, stage="done", error="", result=result, updated_at=timezone.now(),
        **_stage_times(stage_s),
    )


def job_fail(*, job_id: str, error: str, stage_s: dict[str, float] | None = None) -> None:
    Job.objects.filter(pk=job_id, status__in=_UNFINISHED).update(
        status=Job.Status.FAILED, stage="failed", error=error, updated_at=timezone.now(), **_stage_times(stage_s)
    )


def _stage_times(stage_s: dict[str, float] | None) -> dict:
    """The update of a job's ``stage_s``; none when the caller keeps no stage times (a sweep, a cancel)."""
    return {} if stage_s is None else {"stage_s": stage_s}


def job_heartbeat(*, job_id: str) -> None:
    """Marks a running job alive: its worker calls this every MIXREF_JOB_HEARTBEAT_S (workers.tasks)."""
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(updated_at=timezone.now())


def _job_resend(job_id: str, task_name: str) -> None:
    try:
        app.send_task(task_name, args=[job_id])
    except Exception:
        logger.exception("could not re-send job %s; the next sweep tries again", job_id)


def jobs_sweep() -> dict[str, int]:
    """Finds jobs nobody is working on and requeues them, or fails them with a reason; returns counts.

    - running, but no heartbeat for MIXREF_JOB_STALE_S: its worker is gone (killed whole, so the broker
      will not hand the message back before its visibility timeout). Queued again and re-sent, or failed
      once it has used MIXREF_JOB_MAX_ATTEMPTS.
    - queued for MIXREF_JOB_RESEND_S without starting: its message may be lost; re-sent (a finished job
      skips a repeated message). Failed once queued for MIXREF_JOB_QUEUED_MAX_S.
    Each change is a conditional UPDATE, so two sweepers at once requeue a job once.
    """
    from webapp.config.celery import JOB_TASKS

    now = timezone.now()
    counts = {"requeued": 0, "resent": 0, "failed": 0}
    stale = Job.objects.filter(status=Job.Status.RUNNING,
                               updated_at__lt=now - timedelta(seconds=settings.MIXREF_JOB_STALE_S))
    for job in stale:
        still_stale = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, updated_at=job.updated_at)
        if job.attempts >= settings.MIXREF_JOB_MAX_ATTEMPTS:
            counts["failed"] += still_stale.update(
                status=Job.Status.FAILED, stage="failed", updated_at=now,
                error=f"Gave up after {job.attempts} attempts: the worker stopped each time.")
        elif still_stale.update(status=Job.Status.QUEUED, stage="requeued: its worker stopped", updated_at=now):
            counts["requeued"] += 1
            _job_resend(str(job.pk), JOB_TASKS[job.kind])
    too_old = Job.objects.filter(status=Job.Status.QUEUED,
                                 created_at__lt=now - timedelta(seconds=settings.MIXREF_JOB_QUEUED_MAX_S))
    counts["failed"] += too_old.update(
        status=Job.Status.FAILED, stage="failed", updated_at=now,
        error="No worker took this job for a long time; start it again (and tell the operator if it recurs).")
    waiting = Job.objects.filter(status=Job.Status.QUEUED,
                                 updated_at__lt=now - timedelta(seconds=settings.MIXREF_JOB_RESEND_S))
    for job in waiting:
        if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, updated_at=job.updated_at).update(updated_at=now):
            counts["resent"] += 1
            _job_resend(str(job.pk), JOB_TASKS[job.kind])
    if any(counts.values()):
        logger.warning("job sweep: %s", counts)
    return counts
