"""The privacy option: on by default, a project's reference audio is deleted once a mix has analysed it, and
only its features are kept; re-renders (in a fresh worker process too) still measure against it."""
import pytest
from django.core.files.storage import default_storage

from webapp.studio import work
from webapp.studio.models import Project
from workers import tasks

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    ready_project,
    render_request,
    rendered_project,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def audio_names_before(ready_project) -> list[str]:
    return [Project.objects.get().reference.file.name]


def test_the_reference_audio_is_gone_after_analysis_and_a_rerender_still_measures_against_it(
        client, ready_project, audio_names_before, rendered_project, enqueued, django_capture_on_commit_callbacks):
    base = f"/api/projects/{rendered_project['id']}/"
    assert ready_project["delete_reference_audio"] is True
    assert rendered_project["reference"]["audio_kept"] is False
    reference = Project.objects.get().reference
    assert not reference.file and default_storage.exists(reference.features_file.name)
    assert audio_names_before and not any(default_storage.exists(name) for name in audio_names_before)
    assert client.get(base + "reference/audio/").status_code == 404
    first = client.get(base + "versions/1/").json()

    work._sessions.clear()  # a worker process that never saw the audio
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(base + "render/", render_request(rendered_project, gain_db=-6.0),
                               content_type="application/json")
    assert response.status_code == 202, response.content
    tasks.project_render(enqueued[-1][1])
    job = client.get(f"/api/jobs/{enqueued[-1][1]}/").json()
    assert (job["status"], job["error"], job["version"]) == ("succeeded", "", 2)
    second = client.get(base + "versions/2/").json()
    assert second["analysis"]["loudness_lufs"]["reference"] == first["analysis"]["loudness_lufs"]["reference"]
    assert second["analysis"]["af_loss"]["mix"] is not None
    assert second["analysis"]["loudness_lufs"]["mix"] != first["analysis"]["loudness_lufs"]["mix"]
    charts = client.get(base + "versions/2/charts/").json()
    assert len(charts["spectrograms"]["data"]) == 2  # the mix's and the kept reference's

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(base + "mix/", {"method": "auto"}, content_type="application/json")
    tasks.project_mix(enqueued[-1][1])
    job = client.get(f"/api/jobs/{enqueued[-1][1]}/").json()
    assert job["status"] == "failed" and "upload the reference again" in job["error"]


def test_with_the_option_off_the_reference_audio_stays(client, ready_project, enqueued,
                                                       django_capture_on_commit_callbacks):
    base = f"/api/projects/{ready_project['id']}/"
    assert client.patch(base, {"delete_reference_audio": "yes"}, content_type="application/json").status_code == 400
    project = client.patch(base, {"delete_reference_audio": False}, content_type="application/json").json()
    assert project["delete_reference_audio"] is False and project["name"] == "My Song"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(base + "render/", render_request(ready_project), content_type="application/json")
    tasks.project_render(enqueued[-1][1])
    assert client.get(base).json()["reference"]["audio_kept"] is True
    assert client.get(base + "reference/audio/").status_code == 200
