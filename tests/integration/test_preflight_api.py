"""Stem preflight through the API: the report of a project's stems, and its fixes rewriting a stem's stored
audio (or deleting the stem), refused with a reason and nothing lost when they cannot be applied."""
import io

import numpy as np
import pytest
import soundfile
from django.test import Client

from tests.signals import noise, sine
from webapp.core.models import Job
from webapp.studio.models import Project, Stem

from .studio_helpers import error_of, project_create, stems_upload, wav_bytes

pytestmark = pytest.mark.django_db

RATE_HZ = 48000
DC_OFFSET = 0.1  # reads -20 dBFS


def upload(client, files: dict[str, bytes]) -> dict:
    project = project_create(client)
    assert stems_upload(client, project["id"], files).status_code == 201
    return client.get(f"/api/projects/{project['id']}/").json()


def report(client, project: dict) -> dict:
    response = client.get(f"/api/projects/{project['id']}/preflight/")
    assert response.status_code == 200, response.content
    return response.json()


def fix(client, project: dict, stem: dict, name: str):
    return client.post(f"/api/projects/{project['id']}/stems/{stem['id']}/fix/", {"fix": name},
                       content_type="application/json")


@pytest.fixture
def offset_project(client, media_root) -> dict:
    """A 48 kHz bass with a DC offset of 0.1 and clean stereo keys."""
    bass = sine(100.0, 2.0, sample_rate=RATE_HZ, amplitude=0.4) + DC_OFFSET
    keys = noise(2.0, sample_rate=RATE_HZ, rms=0.05, channels=2, seed=1)
    return upload(client, {"Bass.wav": wav_bytes(bass, RATE_HZ), "Keys.wav": wav_bytes(keys, RATE_HZ)})


def test_the_report_names_the_offset_stem_and_removing_the_offset_rewrites_it_at_its_own_rate(
    client, offset_project, media_root, django_capture_on_commit_callbacks,
):
    bass = offset_project["stems"][0]
    [finding] = report(client, offset_project)["findings"]
    assert (finding["check"], finding["track"], finding["fix"]) == ("dc_offset", bass["id"], "remove_dc")
    assert finding["fix_label"] == "Remove the DC offset"
    assert finding["values"]["dc_offset_dbfs"] == pytest.approx(-20.0, abs=0.01)
    old_file = media_root / Stem.objects.get(pk=bass["id"]).file.name

    with django_capture_on_commit_callbacks(execute=True):
        response = fix(client, offset_project, bass, "remove_dc")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == "Bass.wav: its DC offset was removed; stored as Bass.flac (24-bit FLAC, 48 kHz)."
    assert (body["stem"]["id"], body["stem"]["name"], body["stem"]["filename"]) == (bass["id"], "Bass", "Bass.flac")
    assert body["stem"]["sample_rate"] == RATE_HZ
    assert not old_file.exists()
    stored = Stem.objects.get(pk=bass["id"]).file
    audio, rate_hz = soundfile.read(io.BytesIO(stored.read()), dtype="float64")
    assert rate_hz == RATE_HZ and len(audio) == 2 * RATE_HZ
    assert abs(audio.mean()) < 1e-4
    # The tone is kept: 16-bit input, one resampling each way, 24-bit output.
    expected = 0.4 * np.sin(2 * np.pi * 100.0 * np.arange(len(audio)) / RATE_HZ)
    assert np.max(np.abs(audio - expected)[1000:-1000]) < 1e-3
    assert report(client, offset_project)["findings"] == []


def test_folding_dual_mono_and_deleting_an_inverted_copy(client, media_root, django_capture_on_commit_callbacks):
    pad = noise(2.0, rms=0.05, seed=4)
    lead = sine(220.0, 2.0, amplitude=0.3)
    project = upload(client, {"Pad.wav": wav_bytes(pad.expand(2, -1).clone()), "Lead.wav": wav_bytes(lead),
                              "Copy.wav": wav_bytes(-lead)})
    found = {f["check"]: f for f in report(client, project)["findings"]}
    assert set(found) == {"dual_mono", "inverted_duplicate"}
    pad_stem, _, copy_stem = project["stems"]
    assert found["inverted_duplicate"]["track"] == copy_stem["id"]

    with django_capture_on_commit_callbacks(execute=True):
        folded = fix(client, project, pad_stem, "fold_to_mono").json()
        deleted = fix(client, project, copy_stem, "delete_stem").json()
    assert folded["stem"]["channels"] == 1
    assert deleted == {"stem": None, "message": "The track Copy (Copy.wav) was deleted."}
    assert list(Stem.objects.values_list("name", flat=True)) == ["Pad", "Lead"]
    assert len(list((media_root / "stems").iterdir())) == 2
    assert report(client, project)["findings"] == []


def test_bad_fixes_are_refused_with_a_reason_and_change_nothing(client, offset_project, media_root):
    bass, keys = offset_project["stems"]
    before = list(Stem.objects.values_list("file", "filename", "channels"))

    unknown = fix(client, offset_project, bass, "flip")
    assert unknown.status_code == 400 and error_of(unknown)["code"] == "invalid_fix"
    mono = fix(client, offset_project, bass, "fold_to_mono")
    assert mono.status_code == 400 and error_of(mono)["message"] == "Bass.wav is already mono."

    (media_root / Stem.objects.get(pk=keys["id"]).file.name).unlink()
    gone = fix(client, offset_project, keys, "remove_dc")
    assert gone.status_code == 409
    assert error_of(gone)["message"] == "Keys.wav could not be checked: its stored copy could not be read."
    assert error_of(client.get(f"/api/projects/{offset_project['id']}/preflight/"))["code"] == "unreadable_stem"

    Project.objects.filter(pk=offset_project["id"]).update(last_job=Job.objects.create(kind=Job.Kind.MIX))
    running = fix(client, offset_project, bass, "remove_dc")
    assert running.status_code == 409 and error_of(running)["code"] == "job_running"
    assert list(Stem.objects.values_list("file", "filename", "channels")) == before
    assert len(list((media_root / "stems").iterdir())) == 1


def test_another_visitor_cannot_read_or_fix(offset_project):
    stranger = Client()
    assert stranger.get(f"/api/projects/{offset_project['id']}/preflight/").status_code == 404
    assert fix(stranger, offset_project, offset_project["stems"][0], "remove_dc").status_code == 404
