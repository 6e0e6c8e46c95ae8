"""The studio's JSON API through Django's test client: projects, stems, the reference, starting jobs
and refusing bad requests. Uploads are really decoded (in child processes); jobs are captured at
enqueue. Versions are tested in test_studio_versions.py, a real worker in test_studio_worker.py."""
import re

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from mixing.params import SCHEMA_VERSION
from tests.signals import sine
from webapp.config.celery import app as celery_app
from webapp.core.models import Job
from webapp.studio.models import Project, Stem

from .studio_helpers import (  # noqa: F401 (fixtures)
    CORRUPT,
    enqueued,
    error_of,
    project_create,
    ready_project,
    reference_upload,
    reference_wav,
    render_request,
    session_stems,
    stems_upload,
    wav_bytes,
    zip_bytes,
)

pytestmark = pytest.mark.django_db


def test_project_is_created_listed_and_renamed(client):
    project = project_create(client, "  First   song ")

    assert project["name"] == "First song"
    assert (project["status"], project["stems"], project["reference"], project["versions"]) == ("empty", [], None, [])
    assert project["current_version"] is None and project["active_job"] is None
    renamed = client.patch(f"/api/projects/{project['id']}/", {"name": "Better"}, content_type="application/json")
    assert renamed.json()["name"] == "Better"
    assert [p["name"] for p in client.get("/api/projects/").json()["projects"]] == ["Better"]


def test_project_without_name_answers_400(client):
    response = client.post("/api/projects/", {"name": " "}, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_name"


def test_good_stems_are_kept_and_corrupt_one_rejected_by_name_and_reason(client, media_root):
    project = project_create(client)
    stems = session_stems(duration_s=2.0)

    response = stems_upload(client, project["id"], {
        "01_Bass.wav": stems["01_Bass.wav"], "broken.wav": CORRUPT, "03_Pad.wav": stems["03_Pad.wav"],
    })

    assert response.status_code == 201
    body = response.json()
    assert [(s["name"], s["filename"], s["channels"], s["position"]) for s in body["stems"]] == [
        ("Bass", "01_Bass.wav", 1, 1), ("Pad", "03_Pad.wav", 2, 2),
    ]
    assert body["stems"][0]["duration_s"] == pytest.approx(2.0)
    assert body["stems"][0]["sample_rate"] == 44100
    assert len(body["rejected"]) == 1
    assert body["rejected"][0]["filename"] == "broken.wav"
    assert "not a readable audio file" in body["rejected"][0]["reason"]
    for stem in Stem.objects.all():
        assert re.fullmatch(r"stems/[0-9a-f]{32}\.wav", stem.file.name)
        assert (media_root / stem.file.name).is_file()


def test_a_silent_stem_is_kept_and_marked_and_a_too_short_one_rejected_with_its_reason(client):
    project = project_create(client)
    silence = wav_bytes(torch.zeros(1, 88200))
    short = wav_bytes(torch.full((1, 4410), 0.1))
    sound = wav_bytes(torch.full((1, 88200), 0.1))

    body = stems_upload(client, project["id"], {"quiet.wav": silence, "blip.wav": short, "tone.wav": sound}).json()

    assert [(stem["filename"], stem["silent"]) for stem in body["stems"]] == [("quiet.wav", True), ("tone.wav", False)]
    assert [(item["filename"], item["reason"]) for item in body["rejected"]] == [
        ("blip.wav", "it is only 0.10 s long; the minimum is 1 s.")]


def test_zip_of_stems_is_unpacked_and_its_non_audio_entries_rejected(client):
    project = project_create(client)
    stems = session_stems(duration_s=2.0)
    archive = zip_bytes({"song/01_Bass.wav": stems["01_Bass.wav"], "song/04_Drums.wav": stems["04_Drums.wav"],
                         "song/notes.txt": b"take 3"})

    body = stems_upload(client, project["id"], {"stems.zip": archive}).json()

    assert [stem["name"] for stem in body["stems"]] == ["Bass", "Drums"]
    assert [item["filename"] for item in body["rejected"]] == ["song/notes.txt"]


def test_track_names_stay_unique_and_rename_refuses_a_taken_name(client):
    project = project_create(client)
    bass = session_stems(duration_s=2.0)["01_Bass.wav"]
    stems_upload(client, project["id"], {"01_Bass.wav": bass})
    second = stems_upload(client, project["id"], {"Bass.wav": bass}).json()["stems"][0]
    assert second["name"] == "Bass (2)"
    url = f"/api/projects/{project['id']}/stems/{second['id']}/"

    taken = client.patch(url, {"name": "bass"}, content_type="application/json")
    renamed = client.patch(url, {"name": "Sub Bass"}, content_type="application/json")

    assert taken.status_code == 400 and error_of(taken)["code"] == "name_taken"
    assert renamed.status_code == 200 and renamed.json()["name"] == "Sub Bass"


def test_stem_upload_over_quota_answers_json_413(client, settings):
    project = project_create(client)
    settings.MIXREF_UPLOAD_MAX_BYTES = 1_000

    response = stems_upload(client, project["id"], {"big.wav": b"x" * 5_000})

    assert response.status_code == 413
    assert error_of(response)["code"] == "upload_too_large"
    assert not Stem.objects.exists()


def test_stems_past_the_track_limit_are_rejected(client, monkeypatch):
    monkeypatch.setattr("webapp.studio.services.MAX_TRACKS", 1)
    project = project_create(client)
    stems = session_stems(duration_s=2.0)

    two = {"01_Bass.wav": stems["01_Bass.wav"], "03_Pad.wav": stems["03_Pad.wav"]}

    body = stems_upload(client, project["id"], two).json()

    again = stems_upload(client, project["id"], {"04_Drums.wav": stems["04_Drums.wav"]}).json()

    assert [stem["name"] for stem in body["stems"]] == ["Bass"]
    assert body["rejected"] == [
        {"filename": "03_Pad.wav", "reason": "the project already has the maximum of 1 tracks."}
    ]
    assert (again["stems"], again["rejected"][0]["filename"]) == ([], "04_Drums.wav")
    assert Stem.objects.count() == 1


def test_reference_upload_by_put_reports_its_loudness_and_replaces_the_old_one(
    client, media_root, django_capture_on_commit_callbacks
):
    project = project_create(client)
    first = reference_upload(client, project["id"], reference_wav(duration_s=3.0))
    old_file = Project.objects.get().reference.file.name

    with django_capture_on_commit_callbacks(execute=True):
        second = reference_upload(client, project["id"], wav_bytes(sine(997.0, 2.0, amplitude=0.1)), name="Quiet.wav")

    assert first.status_code == 201 and second.status_code == 201
    # A mono 997 Hz sine of amplitude 0.1 plays on both channels: -23.0 LUFS + 3.01 dB.
    assert second.json()["loudness_lufs"] == pytest.approx(-20.0, abs=0.2)
    assert second.json()["filename"] == "Quiet.wav"
    assert not (media_root / old_file).exists()


def test_unusable_reference_answers_400_naming_file(client):
    project = project_create(client)

    response = reference_upload(client, project["id"], CORRUPT, name="song.wav")

    assert response.status_code == 400
    assert error_of(response)["message"].startswith("song.wav: ")


def test_mix_needs_stems_and_reference(client, enqueued):
    project = project_create(client)

    response = client.post(f"/api/projects/{project['id']}/mix/", {"method": "auto"}, content_type="application/json")

    assert response.status_code == 409
    assert error_of(response)["code"] == "no_stems"
    assert enqueued == []


def test_mix_is_queued_after_commit_and_a_second_one_is_refused_while_it_runs(
    client, ready_project, enqueued, django_capture_on_commit_callbacks
):
    url = f"/api/projects/{ready_project['id']}/mix/"
    with django_capture_on_commit_callbacks(execute=True):
        job = client.post(url, {"method": "auto"}, content_type="application/json").json()

    again = client.post(url, {"method": "auto"}, content_type="application/json")

    assert (job["kind"], job["status"], job["version"]) == ("mix", "queued", None)
    assert enqueued == [("project_mix", job["id"])]
    assert again.status_code == 409 and error_of(again)["code"] == "job_running"
    project = client.get(f"/api/projects/{ready_project['id']}/").json()
    assert project["status"] == "mixing"
    assert project["active_job"]["id"] == job["id"]


def test_broker_down_fails_the_job_with_a_reason_instead_of_blocking_the_project(
    client, ready_project, monkeypatch, django_capture_on_commit_callbacks
):
    def refuse(name, args):
        raise OSError("connection refused")

    monkeypatch.setattr(celery_app, "send_task", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        job = client.post(f"/api/projects/{ready_project['id']}/mix/", content_type="application/json").json()

    polled = client.get(f"/api/jobs/{job['id']}/").json()
    assert polled["status"] == "failed"
    assert "queue cannot be reached" in polled["error"]
    project = client.get(f"/api/projects/{ready_project['id']}/").json()
    assert (project["status"], project["active_job"]) == ("failed", None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 99}, "schema_version is 99"),
        ({"master": {"master_width_pct": 500}}, "master_width_pct = 500"),
        ({"master": {"loudness_knob": 1}}, "unknown parameter 'loudness_knob'"),
    ],
    ids=["version", "out-of-range", "unknown"],
)
def test_render_with_preset_outside_schema_answers_400_with_the_schema_error(client, ready_project, enqueued, change,
                                                                            message):
    body = render_request(ready_project)
    body["params"].update(change)

    response = client.post(f"/api/projects/{ready_project['id']}/render/", body, content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_preset"
    assert message in error_of(response)["message"]
    assert enqueued == [] and not Job.objects.exists()


def test_render_naming_unknown_stem_answers_400(client, ready_project, enqueued):
    body = render_request(ready_project)
    body["muted"] = ["00000000-0000-0000-0000-000000000000"]

    response = client.post(f"/api/projects/{ready_project['id']}/render/", body, content_type="application/json")

    assert response.status_code == 400
    assert "muted" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "preset.json is not valid JSON"),
        (b'{"schema_version": 1, "tracks": 3}', "'tracks' must be a list"),
    ],
    ids=["not-json", "schema"],
)
def test_preset_upload_outside_schema_answers_400(client, ready_project, enqueued, content, message):
    response = client.post(f"/api/projects/{ready_project['id']}/preset/",
                           {"file": SimpleUploadedFile("preset.json", content)})

    assert response.status_code == 400
    assert message in error_of(response)["message"]
    assert enqueued == []



def test_signing_in_keeps_the_visitors_projects(client, django_user_model):
    project = project_create(client)
    user = django_user_model.objects.create_user("ada", password="x")

    client.force_login(user)

    assert [p["id"] for p in client.get("/api/projects/").json()["projects"]] == [project["id"]]



def test_schema_and_pages_are_served(client):
    project = project_create(client)

    schema = client.get("/api/schema/").json()
    studio = client.get(f"/projects/{project['id']}/")

    assert schema["schema_version"] == SCHEMA_VERSION
    assert {spec["name"] for spec in schema["track"]} >= {"gain_db", "pan_pct"}
    assert f'data-project-id="{project["id"]}"' in studio.content.decode()
    assert b'id="project-list"' in client.get("/").content
    assert client.get("/static/plotly.min.js").status_code == 200
