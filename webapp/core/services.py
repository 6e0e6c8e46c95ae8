"""Writes to Job rows and starting their tasks. Every update is one conditional UPDATE, so a job
that has finished stays finished however many copies of its message a broker delivers."""
import logging
from collections.abc import Callable

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


def job_progress_set(*, job_id: str, progress: float, stage: str) -> None:
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be within 0..1, got {progress}")
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
        progress=progress, stage=stage, updated_at=timezone.now()
    )


def job_succeed(*, job_id: str, result: dict) -> None:
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
        status=Job.Status.SUCCEEDED, progress=1.0, stage="done", error="", result=result, updated_at=timezone.now()
    )


def job_fail(*, job_id: str, error: str) -> None:
    Job.objects.filter(pk=job_id, status__in=_UNFINISHED).update(
        status=Job.Status.FAILED, stage="failed", error=error, updated_at=timezone.now()
    )
