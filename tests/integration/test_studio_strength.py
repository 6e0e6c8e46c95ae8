"""Match strength through the API: the automatic mix keeps its neutral start, and a strength render at 0 %
renders that start, at 100 % the full match, each as a render job whose version keeps the strengths."""
import pytest

from webapp.studio.models import MixVersion
from workers import tasks

from .studio_helpers import enqueued, error_of, ready_project  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

DIMENSIONS = ("tone", "dynamics", "width", "balance", "loudness")


def _started(client, project_id: str, enqueued, capture, body: dict, path: str = "strength/"):
    with capture(execute=True):
        response = client.post(f"/api/projects/{project_id}/{path}", body, content_type="application/json")
    assert response.status_code == 202, response.content
    task, job_id = enqueued[-1]
    getattr(tasks, task)(job_id)
    job = client.get(response.json()["url"]).json()
    assert job["status"] == "succeeded", job["error"]
    return client.get(f"/api/projects/{project_id}/versions/{job['version']}/").json()


def test_strength_zero_renders_the_neutral_start_and_full_strength_the_full_match(
        client, ready_project, enqueued, settings, django_capture_on_commit_callbacks):
    settings.MIXREF_FIT_TIME_BUDGET_S, settings.MIXREF_FIT_ITERATIONS = None, 2
    project_id = ready_project["id"]
    auto = _started(client, project_id, enqueued, django_capture_on_commit_callbacks, {"method": "auto"}, "mix/")
    stored = MixVersion.objects.get(number=auto["number"])
    assert auto["has_neutral"] and stored.neutral_params["master"]["master_loudness_lufs"] == -14.0
    assert stored.neutral_params != stored.auto_params

    neutral = _started(client, project_id, enqueued, django_capture_on_commit_callbacks,
                       {"strengths_pct": dict.fromkeys(DIMENSIONS, 0)})
    assert neutral["params"] == stored.neutral_params
    assert neutral["strengths_pct"] == dict.fromkeys(DIMENSIONS, 0.0)
    assert neutral["loudness_lufs"] == pytest.approx(-14.0, abs=1.0)
    # A strength render is based on the automatic mix, and keeps both ends for the next one.
    assert neutral["auto_params"] == stored.auto_params and neutral["has_neutral"]

    full = _started(client, project_id, enqueued, django_capture_on_commit_callbacks,
                    {"strengths_pct": dict.fromkeys(DIMENSIONS, 100), "base_version": neutral["number"]})
    assert full["params"] == stored.auto_params
    assert full["loudness_lufs"] == pytest.approx(auto["loudness_lufs"], abs=0.05)


def test_a_bad_strength_is_refused_by_name_and_one_before_any_mix_asks_for_a_mix(client, ready_project):
    url = f"/api/projects/{ready_project['id']}/strength/"
    response = client.post(url, {"strengths_pct": {"tone": 120}}, content_type="application/json")
    assert response.status_code == 400 and "tone strength" in error_of(response)["message"]
    response = client.post(url, {"strengths_pct": {"tone": 50}}, content_type="application/json")
    assert response.status_code == 409 and "Mix the project first" in error_of(response)["message"]
