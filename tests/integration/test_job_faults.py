"""Faults around jobs: the broker down when a job starts (a real Redis client against a closed port),
a stuck job the user cancels, a job cancelled while it renders, and a stored file gone missing. The
render task runs in this process."""
import pytest
from celery import Celery
from django.conf import settings

from webapp.core import services as core_services
from webapp.core.models import Job
from webapp.core.services import job_claim
from webapp.studio.models import MixVersion, Stem
from webapp.studio.work import project_render_run
from workers import tasks

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    error_of,
    ready_project,
    render_request,
    session_stems,
    stems_upload,
)
from .test_round_trip import free_port


def _render(client, project: dict, capture) -> str:
    with capture(execute=True):
        response = client.post(f"/api/projects/{project['id']}/render/", render_request(project),
                               content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_a_new_job_answers_503_try_again(client, ready_project, monkeypatch):
    # Nothing listens on this port: kombu's own connection error, in about a second.
    down = Celery("mixref", broker=f"redis://127.0.0.1:{free_port()}/0")
    down.conf.update(task_ignore_result=True, broker_connection_retry=False)
    monkeypatch.setattr(core_services, "app", down)

    response = client.post(f"/api/projects/{ready_project['id']}/mix/", content_type="application/json")

    assert response.status_code == 503
    assert error_of(response) == {"code": "queue_unavailable", "details": {},
                                  "message": "The job queue cannot be reached right now; try again in a minute."}
    project = client.get(f"/api/projects/{ready_project['id']}/").json()
    assert project["active_job"] is None  # the project is not blocked by the job that never queued


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Job.Status.QUEUED, Job.Status.RUNNING])
def test_a_stuck_job_is_cancelled_by_its_owner_and_the_project_works_again(
    client, ready_project, enqueued, django_capture_on_commit_callbacks, status
):
    job_id = _render(client, ready_project, django_capture_on_commit_callbacks)
    Job.objects.filter(pk=job_id).update(status=status)  # its message lost, or its worker gone

    cancelled = client.post(f"/api/jobs/{job_id}/cancel/")

    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["error"]) == ("failed", "Cancelled.")
    added = stems_upload(client, ready_project["id"], {"Keys.wav": session_stems(1.5)["02_Keys.wav"]})
    assert added.status_code == 201 and len(added.json()["stems"]) == 1
    _render(client, client.get(f"/api/projects/{ready_project['id']}/").json(), django_capture_on_commit_callbacks)


@pytest.mark.django_db
def test_cancelling_a_finished_job_leaves_it_as_it_was(client, ready_project, enqueued,
                                                      django_capture_on_commit_callbacks):
    job_id = _render(client, ready_project, django_capture_on_commit_callbacks)
    tasks.project_render(job_id)

    cancelled = client.post(f"/api/jobs/{job_id}/cancel/").json()

    assert (cancelled["status"], cancelled["version"]) == ("succeeded", 1)


@pytest.mark.django_db
def test_a_job_cancelled_while_it_renders_saves_no_version_and_leaves_no_files(
    client, ready_project, enqueued, django_capture_on_commit_callbacks, media_root
):
    job_id = _render(client, ready_project, django_capture_on_commit_callbacks)
    files_before = sorted(path for path in media_root.rglob("*") if path.is_file())
    job_claim(job_id=job_id, max_attempts=settings.MIXREF_JOB_MAX_ATTEMPTS)

    def report(progress: float, stage: str) -> None:
        if stage == "saving the audio":
            assert client.post(f"/api/jobs/{job_id}/cancel/").status_code == 200

    with pytest.raises(Exception, match="cancelled before its version was saved"):
        project_render_run(job_id=job_id, report=report)

    assert not MixVersion.objects.exists()
    assert sorted(path for path in media_root.rglob("*") if path.is_file()) == files_before


@pytest.mark.django_db
def test_a_stored_stem_gone_missing_is_reported_as_missing_not_as_a_bad_upload(
    client, ready_project, enqueued, django_capture_on_commit_callbacks, media_root
):
    stem = Stem.objects.get(name="Pad")
    (media_root / stem.file.name).unlink()
    job_id = _render(client, ready_project, django_capture_on_commit_callbacks)

    tasks.project_render(job_id)

    job = client.get(f"/api/jobs/{job_id}/").json()
    assert job["status"] == "failed"
    assert job["error"] == ("The server's stored copy of the track 'Pad' (03_Pad.wav) is missing; the file you "
                            "uploaded was fine. To mix again, delete the track and add it again.")
