"""The neural tone stage through the API and the worker's services: families from the names at upload and
changed by PATCH, a render with the tone on for the bass (its band of the mix moves audibly), a render asking
for a model that does not exist refused by name, and a strength render keeping the user's tone."""
import io
import shutil

import pytest
import soundfile

from mixing.tone import stage
from tests.signals import band_to_rest_db
from workers import tasks

from .studio_helpers import enqueued, error_of, ready_project, render_request  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

# ready_project's bass is a 55 Hz sine, the only sound below 100 Hz; 1 dB: about the smallest audible step.
BASS_BAND_HZ = (40.0, 70.0)
AUDIBLE_DB = 1.0


@pytest.fixture
def only_the_bass_model(tmp_path, monkeypatch):
    """The shipped bass checkpoint alone, whatever other families' checkpoints are installed."""
    shutil.copy(stage.CHECKPOINT_DIR / "bass.pt", tmp_path / "bass.pt")
    monkeypatch.setattr(stage, "CHECKPOINT_DIR", tmp_path)
    stage.tone_model.cache_clear()
    yield
    stage.tone_model.cache_clear()


def _version(client, project_id: str, enqueued, capture, body: dict, path: str = "render/") -> dict:
    with capture(execute=True):
        response = client.post(f"/api/projects/{project_id}/{path}", body, content_type="application/json")
    assert response.status_code == 202, response.content
    task, job_id = enqueued[-1]
    getattr(tasks, task)(job_id)
    job = client.get(response.json()["url"]).json()
    assert job["status"] == "succeeded", job["error"]
    return client.get(f"/api/projects/{project_id}/versions/{job['version']}/").json()


def _audio(client, project_id: str, number: int):
    response = client.get(f"/api/projects/{project_id}/versions/{number}/audio/")
    return soundfile.read(io.BytesIO(b"".join(response.streaming_content)), dtype="float32", always_2d=True)[0]


def test_families_come_from_the_names_and_a_patch_changes_one(client, ready_project):
    assert [stem["family"] for stem in ready_project["stems"]] == ["bass", "keys"]
    url = f"/api/projects/{ready_project['id']}/stems/{ready_project['stems'][1]['id']}/"
    response = client.patch(url, {"family": "kazoo"}, content_type="application/json")
    assert response.status_code == 400 and "'family' must be one of" in error_of(response)["message"]
    response = client.patch(url, {"family": "guitar"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["family"] == "guitar"
    assert response.json()["name"] == ready_project["stems"][1]["name"]
    families = client.get("/api/schema/").json()["families"]
    assert [family["name"] for family in families] == ["bass", "guitar", "vocal", "keys", "drums"]


def test_the_tone_on_the_bass_moves_its_band_and_a_family_without_a_model_is_refused(
        client, ready_project, enqueued, django_capture_on_commit_callbacks, only_the_bass_model):
    project_id = ready_project["id"]
    capture = django_capture_on_commit_callbacks
    # The default strip (no compressor) passes the tone's change of level at 55 Hz on to the mix.
    dry = _version(client, project_id, enqueued, capture, render_request(ready_project))
    toned = _version(client, project_id, enqueued, capture, render_request(ready_project, tone_amount_pct=100.0))
    assert [track["params"]["tone_amount_pct"] for track in toned["params"]["tracks"]] == [100.0, 0.0]
    first, second = (_audio(client, project_id, number) for number in (dry["number"], toned["number"]))
    moved_db = band_to_rest_db(second, BASS_BAND_HZ) - band_to_rest_db(first, BASS_BAND_HZ)
    assert abs(moved_db) > AUDIBLE_DB

    pad_on = render_request(ready_project)
    pad_on["params"]["tracks"][1]["params"]["tone_amount_pct"] = 50.0
    response = client.post(f"/api/projects/{project_id}/render/", pad_on, content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["message"] == (f"{ready_project['stems'][1]['name']}: the neural tone is at 50 % but "
                                             "there is no model for keys yet; set it to 0 %.")


def test_the_automatic_mix_leaves_the_tone_off_and_a_strength_render_keeps_the_users(
        client, ready_project, enqueued, settings, django_capture_on_commit_callbacks, only_the_bass_model):
    settings.MIXREF_FIT_TIME_BUDGET_S, settings.MIXREF_FIT_ITERATIONS = None, 2
    project_id = ready_project["id"]
    capture = django_capture_on_commit_callbacks
    auto = _version(client, project_id, enqueued, capture, {"method": "auto"}, "mix/")
    assert [track["params"]["tone_amount_pct"] for track in auto["params"]["tracks"]] == [0.0, 0.0]
    params = auto["params"]
    params["tracks"][0]["params"]["tone_amount_pct"] = 100.0
    toned = _version(client, project_id, enqueued, capture, {"params": params, "base_version": auto["number"]})
    # The strength moves what matching set; the bass keeps the user's tone.
    strength = _version(client, project_id, enqueued, capture,
                        {"strengths_pct": {"tone": 50}, "base_version": toned["number"]}, "strength/")
    assert [track["params"]["tone_amount_pct"] for track in strength["params"]["tracks"]] == [100.0, 0.0]
