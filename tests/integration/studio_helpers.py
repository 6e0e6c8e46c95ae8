"""Shared by the studio's API tests: audio made in code and encoded in memory, client helpers, and
fixtures (test modules import the fixtures they use)."""
import io
import zipfile

import pytest
import soundfile
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from mixing import SAMPLE_RATE
from mixing.params import MixParams
from tests.signals import noise, sine
from webapp.config.celery import app as celery_app
from workers import tasks


def wav_bytes(audio: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit WAV of ``audio`` (channels, samples)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, audio.numpy().T, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def session_stems(duration_s: float = 6.0) -> dict[str, bytes]:
    """Four stems of a tiny song: a bass and a keys tone, stereo noise, and gated noise as drums."""
    pulse = (torch.sin(2 * torch.pi * 2.0 * torch.arange(round(duration_s * SAMPLE_RATE)) / SAMPLE_RATE) > 0).float()
    return {
        "01_Bass.wav": wav_bytes(sine(55.0, duration_s, amplitude=0.4)),
        "02_Keys.wav": wav_bytes(sine(440.0, duration_s, amplitude=0.2) + sine(660.0, duration_s, amplitude=0.1)),
        "03_Pad.wav": wav_bytes(noise(duration_s, rms=0.05, channels=2, seed=1)),
        "04_Drums.wav": wav_bytes(noise(duration_s, rms=0.2, seed=2) * pulse),
    }


def reference_wav(duration_s: float = 8.0) -> bytes:
    """A bright, loud stereo reference."""
    song = noise(duration_s, rms=0.15, channels=2, seed=3) + sine(110.0, duration_s, amplitude=0.3)
    return wav_bytes(song.clamp(-1, 1))


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


CORRUPT = b"RIFF\x00\x00\x00\x00WAVEfmt this is not audio"


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple[str, str]]:
    """``(task name, job id)`` of every task sent to the broker."""
    sent = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, args: sent.append((name, *args)))
    return sent


def error_of(response) -> dict:
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.json()["error"]


def project_create(client: Client, name: str = "My Song") -> dict:
    response = client.post("/api/projects/", {"name": name}, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def stems_upload(client: Client, project_id: str, files: dict[str, bytes]):
    uploads = [SimpleUploadedFile(name, content) for name, content in files.items()]
    return client.post(f"/api/projects/{project_id}/stems/", {"files": uploads})


def reference_upload(client: Client, project_id: str, content: bytes, name: str = "Ref Song.wav"):
    # PUT with a multipart body, as the browser sends it.
    boundary = "mixrefboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return client.put(f"/api/projects/{project_id}/reference/", body,
                      content_type=f"multipart/form-data; boundary={boundary}")


@pytest.fixture
def ready_project(client) -> dict:
    """A project named "My Song" with a mono and a stereo stem and a reference, as its owner's client sees it."""
    project = project_create(client)
    stems = {"01_Bass.wav": wav_bytes(sine(55.0, 1.5, amplitude=0.4)),
             "03_Pad.wav": wav_bytes(noise(1.5, rms=0.05, channels=2, seed=1))}
    response = stems_upload(client, project["id"], stems)
    assert response.status_code == 201, response.content
    assert reference_upload(client, project["id"], reference_wav(duration_s=2.0)).status_code == 201
    return client.get(f"/api/projects/{project['id']}/").json()


def render_request(project: dict, **changes) -> dict:
    params = MixParams.default(len(project["stems"])).to_preset([stem["name"] for stem in project["stems"]])
    params["tracks"][0]["params"].update(changes)
    return {"params": params, "muted": [], "solo": [], "base_version": None}


@pytest.fixture
def rendered_project(client, ready_project, enqueued, django_capture_on_commit_callbacks) -> dict:
    """``ready_project`` with version 1, rendered by the render task in this process (which, by the project's
    default, deletes the reference's audio and keeps its features)."""
    return version_1_rendered(client, ready_project, enqueued, django_capture_on_commit_callbacks)


@pytest.fixture
def rendered_project_keeping_reference(client, ready_project, enqueued, django_capture_on_commit_callbacks) -> dict:
    """``rendered_project`` with the privacy option off: the reference's audio stays."""
    response = client.patch(f"/api/projects/{ready_project['id']}/", {"delete_reference_audio": False},
                            content_type="application/json")
    assert response.status_code == 200, response.content
    return version_1_rendered(client, ready_project, enqueued, django_capture_on_commit_callbacks)


def version_1_rendered(client, ready_project, enqueued, django_capture_on_commit_callbacks) -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{ready_project['id']}/render/", render_request(ready_project),
                               content_type="application/json")
    assert response.status_code == 202, response.content
    tasks.project_render(enqueued[-1][1])
    job = client.get(f"/api/jobs/{enqueued[-1][1]}/").json()
    assert (job["status"], job["error"], job["version"]) == ("succeeded", "", 1)
    return client.get(f"/api/projects/{ready_project['id']}/").json()
