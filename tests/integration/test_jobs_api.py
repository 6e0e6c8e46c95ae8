"""Jobs and what every API endpoint shares, through Django's test client: the worker's job_run (run
in this process, so no broker or worker is needed), polling, JSON errors, upload limits, CSRF and
the health check."""
import json

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from webapp.core.models import Job
from webapp.studio.selectors import job_as_dict
from workers import tasks

from .studio_helpers import error_of, project_create

pytestmark = pytest.mark.django_db


def reference_url(client: Client) -> str:
    return f"/api/projects/{project_create(client)['id']}/reference/"


def test_progress_reported_by_work_is_visible_while_it_runs():
    job = Job.objects.create(kind=Job.Kind.RENDER)
    seen = []

    def work(report):
        report(0.5, "halfway")
        row = Job.objects.get(pk=job.pk)
        seen.append((row.status, row.progress, row.stage))
        return {"answer": 42}

    tasks.job_run(str(job.pk), work)

    job.refresh_from_db()
    assert seen == [(Job.Status.RUNNING, 0.5, "halfway")]
    assert (job.status, job.progress, job.attempts, job.result) == (Job.Status.SUCCEEDED, 1.0, 1, {"answer": 42})


def test_stage_clock_adds_up_each_stage_by_name_before_its_first_colon():
    ticks = iter([0.0, 1.0, 1.5, 4.0, 6.5])
    clock = tasks.StageClock(clock=lambda: next(ticks))

    assert clock.enter("loading") == {"starting": 1.0}
    assert clock.enter("fitting: 1 of 30") == {"starting": 1.0, "loading": 0.5}
    assert clock.enter("fitting: 2 of 30") == {"starting": 1.0, "loading": 0.5, "fitting": 2.5}
    assert clock.stop() == {"starting": 1.0, "loading": 0.5, "fitting": 5.0}


def test_job_keeps_its_stage_times_after_it_ends():
    job = Job.objects.create(kind=Job.Kind.RENDER)

    def work(report):
        report(0.5, "halfway: 1 of 2")
        report(0.9, "halfway: 2 of 2")
        return {"answer": 42}

    tasks.job_run(str(job.pk), work)

    job.refresh_from_db()
    assert set(job.stage_s) == {"starting", "halfway"}
    assert all(seconds >= 0.0 for seconds in job.stage_s.values())
    assert job_as_dict(job)["stage_s"] == job.stage_s


def test_running_a_finished_job_again_changes_nothing():
    job = Job.objects.create(kind=Job.Kind.RENDER)
    tasks.job_run(str(job.pk), lambda report: {"answer": 42})
    first = Job.objects.get(pk=job.pk)

    tasks.job_run(str(job.pk), lambda report: pytest.fail("a finished job ran again"))

    second = Job.objects.get(pk=job.pk)
    assert (second.status, second.attempts, second.result, second.updated_at) == (
        first.status, first.attempts, first.result, first.updated_at
    )


def test_job_that_stopped_its_worker_too_often_fails_with_reason(settings):
    # As if each earlier attempt had been killed mid-run and requeued.
    job = Job.objects.create(kind=Job.Kind.MIX, status=Job.Status.RUNNING, attempts=settings.MIXREF_JOB_MAX_ATTEMPTS)

    tasks.job_run(str(job.pk), lambda report: pytest.fail("a poison job ran again"))

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert f"Gave up after {settings.MIXREF_JOB_MAX_ATTEMPTS} attempts" in job.error


@pytest.mark.parametrize(
    ("exception", "expected_error"),
    [
        (SoftTimeLimitExceeded(), "Stopped after the time limit"),
        (KeyError("secret detail"), "Internal error; it has been logged."),
    ],
    ids=["time-limit", "bug"],
)
def test_work_that_raises_fails_job_without_leaking_internals(exception, expected_error):
    job = Job.objects.create(kind=Job.Kind.RENDER)

    def work(report):
        raise exception

    tasks.job_run(str(job.pk), work)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith(expected_error)
    assert "secret detail" not in job.error


def test_a_job_of_no_project_answers_404_like_a_missing_one(client):
    job = Job.objects.create(kind=Job.Kind.MIX)

    response = client.get(f"/api/jobs/{job.pk}/")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("size_bytes", [5_000, 200_000], ids=["counted-while-reading", "refused-by-length"])
def test_upload_over_quota_answers_json_413(client, settings, size_bytes):
    url = reference_url(client)
    settings.MIXREF_UPLOAD_MAX_BYTES = 1_000

    response = client.post(url, {"file": SimpleUploadedFile("big.wav", b"x" * size_bytes)})

    assert response.status_code == 413
    assert error_of(response)["code"] == "upload_too_large"


def test_too_many_files_answers_json_413(client, settings):
    url = reference_url(client)
    settings.MIXREF_UPLOAD_MAX_FILES = 2
    files = [SimpleUploadedFile(f"{index}.wav", b"x") for index in range(3)]

    response = client.post(url, {"file": files})

    assert response.status_code == 413
    assert error_of(response)["code"] == "too_many_files"


@pytest.mark.parametrize(
    ("data", "code"),
    [({}, "missing_file"), ({"file": SimpleUploadedFile("empty.wav", b"")}, "empty_file")],
    ids=["missing", "empty"],
)
def test_bad_upload_answers_json_400(client, data, code):
    response = client.post(reference_url(client), data)

    assert response.status_code == 400
    assert error_of(response)["code"] == code


@pytest.mark.parametrize(
    "url", ["/api/jobs/00000000-0000-0000-0000-000000000000/", "/api/jobs/not-a-uuid/", "/api/nothing-here/"]
)
def test_unknown_api_paths_answer_json_404(client, url):
    response = client.get(url)

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_post_without_csrf_token_answers_json_403():
    response = Client(enforce_csrf_checks=True).post("/api/projects/", {"name": "x"}, content_type="application/json")

    assert response.status_code == 403
    assert error_of(response)["code"] == "csrf_failed"


def test_post_with_token_from_session_endpoint_is_accepted():
    client = Client(enforce_csrf_checks=True)
    token = client.get("/api/session/").json()["csrf_token"]

    response = client.post("/api/projects/", {"name": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201


def test_health_check_reports_database_reachable(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}
