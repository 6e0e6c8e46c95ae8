"""While a job of a project is queued or running, its stems and reference cannot change (409), so the
version the job makes describes exactly the inputs it was started from. The render task runs in this
process; uploads are really decoded."""
import pytest

from webapp.core.models import Job
from webapp.studio.models import MixVersion, Reference, Stem
from workers import tasks

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    error_of,
    ready_project,
    reference_upload,
    reference_wav,
    render_request,
    session_stems,
    stems_upload,
)

pytestmark = pytest.mark.django_db


def _edits(client, project: dict) -> dict:
    """Every change to a project's inputs, as the studio sends it."""
    base = f"/api/projects/{project['id']}/"
    stem_url = base + f"stems/{project['stems'][0]['id']}/"
    return {
        "rename a stem": lambda: client.patch(stem_url, {"name": "Sub"}, content_type="application/json"),
        "add a stem": lambda: stems_upload(client, project["id"], {"Extra.wav": session_stems(1.5)["02_Keys.wav"]}),
        "replace the reference": lambda: reference_upload(client, project["id"], reference_wav(3.0), name="New.wav"),
        "delete a stem": lambda: client.delete(stem_url),
    }


@pytest.mark.parametrize("status", [Job.Status.QUEUED, Job.Status.RUNNING])
def test_inputs_cannot_change_while_a_job_of_the_project_is_unfinished(
    client, ready_project, enqueued, django_capture_on_commit_callbacks, status
):
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/api/projects/{ready_project['id']}/render/", render_request(ready_project),
                              content_type="application/json")
    assert started.status_code == 202
    Job.objects.filter(pk=enqueued[-1][1]).update(status=status)
    stems_before = list(Stem.objects.order_by("position").values_list("id", "name", "file"))
    reference_before = Reference.objects.values_list("filename", "file").get()

    for what, edit in _edits(client, ready_project).items():
        response = edit()
        assert response.status_code == 409, (what, response.status_code)
        error = error_of(response)
        assert error["code"] == "job_running"
        assert "queued or running" in error["message"], what

    assert list(Stem.objects.order_by("position").values_list("id", "name", "file")) == stems_before
    assert Reference.objects.values_list("filename", "file").get() == reference_before


def test_the_version_describes_the_inputs_it_was_started_from_and_edits_resume_after(
    client, ready_project, enqueued, django_capture_on_commit_callbacks
):
    request = render_request(ready_project)
    request["muted"] = [ready_project["stems"][1]["id"]]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/projects/{ready_project['id']}/render/", request, content_type="application/json")
    for edit in _edits(client, ready_project).values():
        assert edit().status_code == 409

    tasks.project_render(enqueued[-1][1])

    version = MixVersion.objects.get()
    assert [track["name"] for track in version.params["tracks"]] == [stem["name"] for stem in ready_project["stems"]]
    assert version.muted == request["muted"]
    assert [level["stem"] for level in version.analysis["track_levels"]] == [s["id"] for s in ready_project["stems"]]
    reference = Reference.objects.get()
    assert reference.filename == ready_project["reference"]["filename"]
    assert version.analysis["loudness_lufs"]["reference"] == pytest.approx(reference.loudness_lufs, abs=0.05)
    # Finished: the inputs may change again.
    with django_capture_on_commit_callbacks(execute=True):
        statuses = {what: edit().status_code for what, edit in _edits(client, ready_project).items()}
    assert statuses == {"rename a stem": 200, "add a stem": 201, "replace the reference": 201, "delete a stem": 204}
