"""The JSON API and the loudness job, through Django's test client; the task runs in this process
(its on-commit enqueue is captured), so these tests need no broker or worker."""
import json
import re

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from webapp.core.models import Job
from webapp.projects.models import AudioFile
from workers import tasks

from .conftest import loudness_lufs_of, sine_wav_bytes

pytestmark = pytest.mark.django_db

UPLOAD_URL = "/api/audio-files/"


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """Arguments of every loudness task sent to the broker."""
    sent = []
    monkeypatch.setattr(tasks.audio_file_measure_loudness, "delay", lambda *args: sent.append(args))
    return sent


def upload(client: Client, name: str, content: bytes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(UPLOAD_URL, {"file": SimpleUploadedFile(name, content)})


def error_of(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


def test_upload_stores_file_under_uuid_key_and_enqueues_job_after_commit(
    client, enqueued, media_root, django_capture_on_commit_callbacks
):
    response = upload(client, "My Song.WAV", sine_wav_bytes(amplitude=0.1), django_capture_on_commit_callbacks)

    assert response.status_code == 202
    body = response.json()
    assert body["job"]["status"] == "queued"
    assert enqueued == [(body["job"]["id"], body["audio_file"]["id"])]
    audio_file = AudioFile.objects.get(pk=body["audio_file"]["id"])
    assert audio_file.original_name == "My Song.WAV"
    assert re.fullmatch(r"audio/[0-9a-f]{32}\.wav", audio_file.file.name)
    assert (media_root / audio_file.file.name).is_file()


def test_task_measures_loudness_and_poll_reports_it(client, enqueued, django_capture_on_commit_callbacks):
    wav = sine_wav_bytes(amplitude=0.1)
    body = upload(client, "sine.wav", wav, django_capture_on_commit_callbacks).json()

    tasks.audio_file_measure_loudness(*enqueued[0])

    job = client.get(body["job"]["url"]).json()
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["attempts"] == 1
    assert job["result"]["integrated_lufs"] == pytest.approx(loudness_lufs_of(wav), abs=1e-3)
    assert job["result"]["integrated_lufs"] == pytest.approx(-23.0, abs=0.1)


def test_running_a_finished_job_again_changes_nothing(client, enqueued, django_capture_on_commit_callbacks):
    upload(client, "sine.wav", sine_wav_bytes(amplitude=0.1), django_capture_on_commit_callbacks)
    tasks.audio_file_measure_loudness(*enqueued[0])
    first = Job.objects.get(pk=enqueued[0][0])

    tasks.audio_file_measure_loudness(*enqueued[0])

    second = Job.objects.get(pk=enqueued[0][0])
    assert (second.status, second.attempts, second.result, second.updated_at) == (
        first.status, first.attempts, first.result, first.updated_at
    )


def test_job_that_stopped_its_worker_too_often_fails_with_reason(
    client, enqueued, settings, django_capture_on_commit_callbacks
):
    upload(client, "sine.wav", sine_wav_bytes(amplitude=0.1), django_capture_on_commit_callbacks)
    job_id = enqueued[0][0]
    # As if each earlier attempt had been killed mid-run and requeued.
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING, attempts=settings.MIXREF_JOB_MAX_ATTEMPTS)

    tasks.audio_file_measure_loudness(*enqueued[0])

    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.FAILED
    assert f"Gave up after {settings.MIXREF_JOB_MAX_ATTEMPTS} attempts" in job.error


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEnot really audio", "sine.wav: "),
        (sine_wav_bytes(amplitude=0.0), "sine.wav: "),
    ],
    ids=["unreadable", "silent"],
)
def test_unusable_audio_fails_job_with_reason_naming_file(
    client, enqueued, content, reason, django_capture_on_commit_callbacks
):
    upload(client, "sine.wav", content, django_capture_on_commit_callbacks)

    tasks.audio_file_measure_loudness(*enqueued[0])

    job = Job.objects.get(pk=enqueued[0][0])
    assert job.status == Job.Status.FAILED
    assert job.error.startswith(reason)
    assert "Internal error" not in job.error


def test_progress_reported_by_work_is_visible_while_it_runs():
    job = Job.objects.create(kind="test")
    seen = []

    def work(report):
        report(0.5, "halfway")
        row = Job.objects.get(pk=job.pk)
        seen.append((row.status, row.progress, row.stage))
        return {"answer": 42}

    tasks.job_run(str(job.pk), work)

    job.refresh_from_db()
    assert seen == [(Job.Status.RUNNING, 0.5, "halfway")]
    assert (job.status, job.progress, job.result) == (Job.Status.SUCCEEDED, 1.0, {"answer": 42})


@pytest.mark.parametrize(
    ("exception", "expected_error"),
    [
        (SoftTimeLimitExceeded(), "Stopped after the time limit"),
        (KeyError("secret detail"), "Internal error; it has been logged."),
    ],
    ids=["time-limit", "bug"],
)
def test_work_that_raises_fails_job_without_leaking_internals(exception, expected_error):
    job = Job.objects.create(kind="test")

    def work(report):
        raise exception

    tasks.job_run(str(job.pk), work)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith(expected_error)
    assert "secret detail" not in job.error


@pytest.mark.parametrize("size_bytes", [5_000, 200_000], ids=["counted-while-reading", "refused-by-length"])
def test_upload_over_quota_answers_json_413_and_stores_nothing(client, settings, enqueued, size_bytes):
    settings.MIXREF_UPLOAD_MAX_BYTES = 1_000

    response = client.post(UPLOAD_URL, {"file": SimpleUploadedFile("big.wav", b"x" * size_bytes)})

    assert response.status_code == 413
    assert error_of(response)["code"] == "upload_too_large"
    assert not AudioFile.objects.exists()
    assert enqueued == []


def test_too_many_files_answers_json_413(client, settings):
    settings.MIXREF_UPLOAD_MAX_FILES = 2
    files = [SimpleUploadedFile(f"{index}.wav", b"x") for index in range(3)]

    response = client.post(UPLOAD_URL, {"file": files})

    assert response.status_code == 413
    assert error_of(response)["code"] == "too_many_files"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({}, "missing_file"),
        ({"file": SimpleUploadedFile("empty.wav", b"")}, "empty_file"),
        ({"file": SimpleUploadedFile("notes.txt", b"hello")}, "unsupported_format"),
    ],
    ids=["missing", "empty", "not-audio"],
)
def test_bad_upload_answers_json_400(client, data, code):
    response = client.post(UPLOAD_URL, data)

    assert response.status_code == 400
    assert error_of(response)["code"] == code


@pytest.mark.parametrize(
    "url", ["/api/jobs/00000000-0000-0000-0000-000000000000/", "/api/jobs/not-a-uuid/", "/api/nothing-here/"]
)
def test_unknown_api_paths_answer_json_404(client, url):
    response = client.get(url)

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_upload_without_csrf_token_answers_json_403():
    response = Client(enforce_csrf_checks=True).post(UPLOAD_URL, {"file": SimpleUploadedFile("a.wav", b"x")})

    assert response.status_code == 403
    assert error_of(response)["code"] == "csrf_failed"


def test_upload_with_token_from_session_endpoint_is_accepted(enqueued, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    token = client.get("/api/session/").json()["csrf_token"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            UPLOAD_URL, {"file": SimpleUploadedFile("a.wav", sine_wav_bytes(amplitude=0.1))}, HTTP_X_CSRFTOKEN=token
        )

    assert response.status_code == 202
    assert len(enqueued) == 1


def test_health_check_reports_database_reachable(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}

