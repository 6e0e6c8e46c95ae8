"""The sweeper and the heartbeat: a running job whose worker is gone is requeued (or failed once it has
used its attempts), a queued job whose message may be lost is sent again (or failed after hours), and
a job that is really running keeps beating. Tasks run in this process; messages are captured at send."""
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from webapp.core.models import Job
from webapp.core.services import jobs_sweep
from webapp.studio.models import MixVersion
from workers import tasks

from .studio_helpers import enqueued, ready_project, render_request  # noqa: F401 (fixtures)


def _aged(job_id: str, *, seconds: float, **fields) -> None:
    """As if the job's row was last touched ``seconds`` ago (update() leaves auto_now alone)."""
    then = timezone.now() - timedelta(seconds=seconds)
    Job.objects.filter(pk=job_id).update(updated_at=then, created_at=then, **fields)


@pytest.fixture
def render_job(client, ready_project, enqueued, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{ready_project['id']}/render/", render_request(ready_project),
                               content_type="application/json")
    assert response.status_code == 202
    enqueued.clear()
    return response.json()["id"]


@pytest.mark.django_db
def test_a_running_job_whose_worker_is_gone_is_requeued_and_then_done_once(render_job, enqueued, settings):
    _aged(render_job, seconds=settings.MIXREF_JOB_STALE_S + 1, status=Job.Status.RUNNING, attempts=1, progress=0.22)

    assert jobs_sweep() == {"requeued": 1, "resent": 0, "failed": 0}

    job = Job.objects.get(pk=render_job)
    assert (job.status, job.stage) == (Job.Status.QUEUED, "requeued: its worker stopped")
    assert enqueued == [("project_render", render_job)]
    tasks.project_render(render_job)
    job.refresh_from_db()
    assert (job.status, job.attempts, MixVersion.objects.count()) == (Job.Status.SUCCEEDED, 2, 1)


@pytest.mark.django_db
def test_a_job_whose_worker_stopped_on_every_attempt_fails_with_a_reason(render_job, enqueued, settings):
    _aged(render_job, seconds=settings.MIXREF_JOB_STALE_S + 1, status=Job.Status.RUNNING,
          attempts=settings.MIXREF_JOB_MAX_ATTEMPTS)

    assert jobs_sweep()["failed"] == 1

    job = Job.objects.get(pk=render_job)
    assert job.status == Job.Status.FAILED
    assert job.error == f"Gave up after {settings.MIXREF_JOB_MAX_ATTEMPTS} attempts: the worker stopped each time."
    assert enqueued == []


@pytest.mark.django_db
def test_a_job_with_a_fresh_heartbeat_is_left_alone(render_job, enqueued, settings):
    _aged(render_job, seconds=settings.MIXREF_JOB_STALE_S - 10, status=Job.Status.RUNNING, attempts=1)

    assert jobs_sweep() == {"requeued": 0, "resent": 0, "failed": 0}
    assert Job.objects.get(pk=render_job).status == Job.Status.RUNNING


@pytest.mark.django_db
def test_a_queued_job_whose_message_may_be_lost_is_sent_again_and_fails_after_hours(render_job, enqueued, settings):
    _aged(render_job, seconds=settings.MIXREF_JOB_RESEND_S + 1)

    assert jobs_sweep()["resent"] == 1
    assert enqueued == [("project_render", render_job)]
    assert jobs_sweep()["resent"] == 0  # not again until another MIXREF_JOB_RESEND_S has passed

    _aged(render_job, seconds=settings.MIXREF_JOB_QUEUED_MAX_S + 1)
    assert jobs_sweep()["failed"] == 1
    assert "No worker took this job" in Job.objects.get(pk=render_job).error


@pytest.mark.django_db(transaction=True)
def test_a_running_job_beats_while_its_work_is_silent(settings):
    settings.MIXREF_JOB_HEARTBEAT_S = 0.05
    job = Job.objects.create(kind=Job.Kind.RENDER)
    _aged(str(job.pk), seconds=3600)
    beats = []

    def silent_work(report):
        time.sleep(0.5)  # a long stage that reports nothing
        beats.append(Job.objects.get(pk=job.pk).updated_at)
        return {}

    tasks.job_run(str(job.pk), silent_work)

    assert timezone.now() - beats[0] < timedelta(seconds=0.3)
