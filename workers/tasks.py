"""One task per kind of job (webapp.config.celery.JOB_TASKS). Tasks take a job id, re-fetch
everything from the database, and keep their Job row in step through ``job_run``. Running a task
twice is safe: a finished job is skipped, and a job that saved its version before returns that
version instead of making another (webapp.studio.work).

Django and the mixing code are imported inside the tasks: this module is loaded by the prefork
parent, which must stay free of torch and CUDA (see workers.celery).
"""
import logging
import threading
import time
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded

from webapp.config.celery import HOUSEKEEPING_TASK, JOB_TASKS, JOBS_SWEEP_TASK

from .celery import app

logger = logging.getLogger(__name__)


def job_run(job_id: str, work: Callable[[Callable[[float, str], None]], dict]) -> None:
    """Runs ``work(report)`` as the job ``job_id``: claims the row, passes a ``report(progress, stage)``
    callback, and stores the dict it returns as the result, or the reason it failed.

    Errors meant for users (ApplicationError, MixingError) become the job's error as they are;
    anything else is logged and the user reads a generic message. Nothing is re-raised: the job
    row is the outcome, and the broker message is acknowledged either way.
    """
    from django.conf import settings

    from webapp.core.errors import as_application_error
    from webapp.core.services import job_claim, job_fail, job_progress_set, job_succeed

    if job_claim(job_id=job_id, max_attempts=settings.MIXREF_JOB_MAX_ATTEMPTS) is None:
        return

    clock = StageClock()

    def report(progress: float, stage: str) -> None:
        job_progress_set(job_id=job_id, progress=progress, stage=stage, stage_s=clock.enter(stage))

    try:
        with _heartbeat(job_id, interval_s=settings.MIXREF_JOB_HEARTBEAT_S):
            result = work(report)
    except SoftTimeLimitExceeded:
        message = f"Stopped after the time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s."
    except Exception as exc:
        error = as_application_error(exc)
        if error is None:
            logger.exception("job %s failed", job_id)
            message = "Internal error; it has been logged."
        else:
            message = error.message
    else:
        job_succeed(job_id=job_id, result=result, stage_s=clock.stop())
        return
    job_fail(job_id=job_id, error=message, stage_s=clock.stop())


class StageClock:
    """Seconds a job spent in each stage it reported, by stage name: the stage text up to its first ": ", so
    that a fit's iteration count ("fitting: 12 of 30") stays one stage. A stage reported twice adds up. The
    time before the first report counts as "starting"."""

    STARTING = "starting"

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.name = self.STARTING
        self.since = clock()
        self.seconds: dict[str, float] = {}

    def enter(self, stage: str) -> dict[str, float]:
        """Closes the current stage, starts ``stage``; returns the seconds of the closed stages."""
        self._close()
        self.name = stage.split(": ", 1)[0]
        return dict(self.seconds)

    def stop(self) -> dict[str, float]:
        """Closes the current stage; returns the seconds of every stage."""
        self._close()
        return dict(self.seconds)

    def _close(self) -> None:
        now = self.clock()
        self.seconds[self.name] = round(self.seconds.get(self.name, 0.0) + now - self.since, 3)
        self.since = now


class _heartbeat:
    """While the work runs, a thread touches the job's row every ``interval_s``, so that the sweeper can
    tell a long step (one render stage can be silent for minutes) from a worker that is gone."""

    def __init__(self, job_id: str, *, interval_s: float):
        self.job_id, self.interval_s = job_id, interval_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        from django.db import connection

        from webapp.core.services import job_heartbeat

        try:
            while not self.stopped.wait(self.interval_s):
                try:
                    job_heartbeat(job_id=self.job_id)
                except Exception:  # a busy database: the next beat tries again
                    logger.exception("heartbeat of job %s failed", self.job_id)
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join()


@app.task(name=JOBS_SWEEP_TASK)
def jobs_sweep() -> dict[str, int]:
    from webapp.core.services import jobs_sweep as sweep

    return sweep()


@app.task(name=JOB_TASKS["mix"])
def project_mix(job_id: str) -> None:
    from webapp.studio.work import project_mix_run

    job_run(job_id, lambda report: project_mix_run(job_id=job_id, report=report))


@app.task(name=JOB_TASKS["render"])
def project_render(job_id: str) -> None:
    """A re-render or an applied preset: both render the parameters the job's request holds."""
    from webapp.studio.work import project_render_run

    job_run(job_id, lambda report: project_render_run(job_id=job_id, report=report))


@app.task(name=JOB_TASKS["stems"])
def project_stems(job_id: str) -> None:
    """A version's processed stems as one ZIP, stored with the version."""
    from webapp.studio.work import project_stems_run

    job_run(job_id, lambda report: project_stems_run(job_id=job_id, report=report))


@app.task(name=HOUSEKEEPING_TASK)
def housekeeping() -> None:
    """Hourly (the beat schedule in webapp.config.celery); deleting twice deletes nothing more."""
    from webapp.studio.housekeeping import housekeeping_run

    housekeeping_run()
