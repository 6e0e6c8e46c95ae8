"""Versions through the API: the render task run in this process makes one, and its audio, charts,
downloads and files are served to their owner only."""
import io
import json

import pytest
import soundfile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from mixing.params import MixParams
from webapp.core.models import Job
from webapp.studio.models import MixVersion, Project
from workers import tasks

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    error_of,
    ready_project,
    reference_upload,
    reference_wav,
    render_request,
    rendered_project,
    rendered_project_keeping_reference,
)

pytestmark = pytest.mark.django_db


def test_render_task_makes_a_version_with_audio_analysis_and_charts(client, rendered_project):
    project_id = rendered_project["id"]
    version = client.get(f"/api/projects/{project_id}/versions/1/").json()

    assert rendered_project["status"] == "mixed" and rendered_project["current_version"] == 1
    assert version["method"] == "manual"
    assert [track["name"] for track in version["params"]["tracks"]] == ["Bass", "Pad"]
    assert set(version["analysis"]["loudness_lufs"]) == {"mix", "reference", "baseline"}
    assert version["loudness_lufs"] == pytest.approx(version["params"]["master"]["master_loudness_lufs"], abs=1.0)
    stem_ids = [stem["id"] for stem in rendered_project["stems"]]
    assert [level["stem"] for level in version["analysis"]["track_levels"]] == stem_ids
    charts = client.get(f"/api/projects/{project_id}/versions/1/charts/").json()
    assert set(charts) == {"spectrograms", "spectra", "features", "levels"}
    assert [trace["type"] for trace in charts["spectrograms"]["data"]] == ["heatmap", "heatmap"]
    assert charts["spectrograms"]["layout"]["paper_bgcolor"] == "rgba(0,0,0,0)"


def test_running_a_finished_render_job_again_makes_no_second_version(client, rendered_project):
    job_id = str(MixVersion.objects.get().job_id)

    tasks.project_render(job_id)
    # Also when the job row was left running by a worker killed after saving the version.
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING)
    tasks.project_render(job_id)

    assert MixVersion.objects.count() == 1
    assert Job.objects.get(pk=job_id).status == Job.Status.SUCCEEDED


def test_an_applied_preset_is_a_render_job_whose_version_says_preset(
        client, rendered_project, enqueued, django_capture_on_commit_callbacks):
    preset = client.get(f"/api/projects/{rendered_project['id']}/versions/1/preset/").content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{rendered_project['id']}/preset/",
                               {"file": SimpleUploadedFile("mine.json", preset)})
    assert response.status_code == 202, response.content

    assert enqueued[-1] == ("project_render", response.json()["id"])
    tasks.project_render(enqueued[-1][1])

    job = client.get(response.json()["url"]).json()
    assert (job["kind"], job["status"], job["version"]) == ("render", "succeeded", 2)
    assert client.get(f"/api/projects/{rendered_project['id']}/versions/2/").json()["method"] == "preset"


def test_version_audio_answers_range_requests_with_its_loudness(client, rendered_project):
    url = f"/api/projects/{rendered_project['id']}/versions/1/audio/"
    whole = client.get(url)
    size = int(whole["Content-Length"])

    part = client.get(url, HTTP_RANGE="bytes=100-199")
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    outside = client.get(url, HTTP_RANGE=f"bytes={size}-")

    content = b"".join(whole.streaming_content)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes" and len(content) == size
    assert float(whole["X-Loudness-LUFS"]) == pytest.approx(rendered_project["versions"][0]["loudness_lufs"], abs=0.01)
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{size}"
    assert b"".join(part.streaming_content) == content[100:200]
    assert b"".join(tail.streaming_content) == content[-10:]
    assert outside.status_code == 416


def test_reference_and_baseline_audio_carry_their_loudness_and_answer_ranges(client,
                                                                           rendered_project_keeping_reference):
    rendered_project = rendered_project_keeping_reference
    base = f"/api/projects/{rendered_project['id']}/"

    reference = client.get(base + "reference/audio/?f=Ref%20Song.wav", HTTP_RANGE="bytes=0-99")
    baseline = client.get(base + "baseline/audio/?v=1")

    assert reference.status_code == 206 and len(b"".join(reference.streaming_content)) == 100
    reference_lufs = rendered_project["reference"]["loudness_lufs"]
    assert float(reference["X-Loudness-LUFS"]) == pytest.approx(reference_lufs, abs=0.01)
    version = client.get(base + "versions/1/").json()
    baseline_lufs = version["analysis"]["loudness_lufs"]["baseline"]
    assert float(baseline["X-Loudness-LUFS"]) == pytest.approx(baseline_lufs, abs=0.01)
    assert baseline["Content-Type"] == "audio/wav"


def test_downloads_are_named_after_project_and_version(client, rendered_project):
    base = f"/api/projects/{rendered_project['id']}/versions/1/"

    flac = client.get(base + "download/?format=flac")
    wav24 = client.get(base + "download/?format=wav24")
    preset = client.get(base + "preset/")

    assert flac["Content-Disposition"] == 'attachment; filename="my-song-v1.flac"'
    info = soundfile.info(io.BytesIO(b"".join(wav24.streaming_content)))
    assert (info.subtype, info.samplerate, info.channels) == ("PCM_24", 44100, 2)
    assert preset["Content-Disposition"] == 'attachment; filename="my-song-v1-preset.json"'
    assert MixParams.from_preset(json.loads(preset.content)).tracks[0]["gain_db"] == 0.0
    assert client.get(base + "download/?format=mp3").status_code == 400


def test_nobody_reaches_another_owners_project_files_or_jobs(rendered_project):
    intruder = Client()
    project_id = rendered_project["id"]
    stem_id = rendered_project["stems"][0]["id"]
    job_id = str(MixVersion.objects.get().job_id)
    base = f"/api/projects/{project_id}/"

    for method, url in [
        ("get", base), ("patch", base), ("delete", base), ("post", base + "stems/"),
        ("patch", base + f"stems/{stem_id}/"),
        ("delete", base + f"stems/{stem_id}/"), ("put", base + "reference/"), ("post", base + "mix/"),
        ("get", base + "versions/1/"), ("get", base + "versions/1/charts/"), ("get", base + "versions/1/audio/"),
        ("get", base + "versions/1/download/?format=wav24"), ("get", base + "versions/1/preset/"),
        ("get", base + "reference/audio/"), ("get", base + "baseline/audio/"), ("get", f"/api/jobs/{job_id}/"),
    ]:
        response = getattr(intruder, method)(url, content_type="application/json")
        assert response.status_code == 404, (method, url, response.status_code)
        assert error_of(response)["code"] == "not_found"
    assert intruder.get("/api/projects/").json() == {"projects": []}
    assert intruder.get(f"/projects/{project_id}/").status_code == 404
    assert Project.objects.filter(pk=project_id).exists()


def test_deleting_a_project_removes_every_file_from_storage(
    client, rendered_project, media_root, django_capture_on_commit_callbacks
):
    files = [path for path in media_root.rglob("*") if path.is_file()]
    assert len(files) == 2 + 1 + 3 + 1  # stems, reference, the version's three formats, baseline

    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"/api/projects/{rendered_project['id']}/")

    assert response.status_code == 204
    assert [path for path in media_root.rglob("*") if path.is_file()] == []
    assert not Project.objects.exists() and not Job.objects.exists()


def test_the_automatic_mix_keeps_its_notes_for_the_user(client, ready_project, enqueued, settings,
                                                        django_capture_on_commit_callbacks):
    settings.MIXREF_FIT_TIME_BUDGET_S, settings.MIXREF_FIT_ITERATIONS = None, 2
    mono = soundfile.read(io.BytesIO(reference_wav(duration_s=2.0)), dtype="float32")[0]
    mono = mono.mean(axis=1) if mono.ndim == 2 else mono
    buffer = io.BytesIO()
    soundfile.write(buffer, mono, 44100, format="WAV")
    assert reference_upload(client, ready_project["id"], buffer.getvalue(), name="Mono Ref.wav").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{ready_project['id']}/mix/", {"method": "auto"},
                               content_type="application/json")
    assert response.status_code == 202, response.content
    tasks.project_mix(enqueued[-1][1])
    version = client.get(f"/api/projects/{ready_project['id']}/versions/1/").json()
    assert version["method"] == "auto"
    assert any("reference is mono" in note for note in version["analysis"]["notes"])
    assert any("reference is mono" in reading for reading in version["analysis"]["readings"])


def test_a_rerender_measures_only_its_mix_against_the_kept_reference_and_baseline(
        client, rendered_project, enqueued, monkeypatch, django_capture_on_commit_callbacks):
    from mixing import analysis, session

    baselines, measured, track_passes = [], [], []
    real_baseline, real_measure, real_basis = session.equal_loudness_mix, analysis.measure, analysis.track_level_basis

    def measure(audio, sample_rate):
        measured.append(audio.shape)
        return real_measure(audio, sample_rate)

    monkeypatch.setattr(session, "equal_loudness_mix", lambda *args: baselines.append(1) or real_baseline(*args))
    monkeypatch.setattr(analysis, "measure", measure)
    monkeypatch.setattr(analysis, "track_level_basis", lambda *args: track_passes.append(1) or real_basis(*args))
    project_id = rendered_project["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project_id}/render/", render_request(rendered_project, gain_db=-6.0),
                               content_type="application/json")
    assert response.status_code == 202, response.content
    tasks.project_render(enqueued[-1][1])

    # The worker kept the baseline, the reference's and baseline's measurements and the tracks' level
    # bases from version 1: the analysis measured only the new mix (the advice one more, the mix after its
    # suggested track moves; the automatic mix it advises toward it measured with version 1).
    assert baselines == [] and len(measured) == 1 + 1 and track_passes == []
    versions = [client.get(f"/api/projects/{project_id}/versions/{n}/").json() for n in (1, 2)]
    first, second = (version["analysis"] for version in versions)
    # Each track's level moved by exactly its fader's move.
    gains_db = [[track["params"]["gain_db"] for track in version["params"]["tracks"]] for version in versions]
    for before, after, gain_before, gain_after in zip(first["track_levels"], second["track_levels"], *gains_db,
                                                      strict=True):
        assert after["loudness_lufs"] - before["loudness_lufs"] == pytest.approx(gain_after - gain_before, abs=1e-3)
    for name in ("reference", "baseline"):
        assert second["features"][name] == first["features"][name]
        assert second["loudness_lufs"][name] == first["loudness_lufs"][name]
        assert second["true_peak_dbtp"][name] == first["true_peak_dbtp"][name]
    assert second["af_loss"]["baseline"] == first["af_loss"]["baseline"]
    assert second["af_loss"]["mix"] != first["af_loss"]["mix"]
    charts = [client.get(f"/api/projects/{project_id}/versions/{n}/charts/").json() for n in (1, 2)]
    for figure in ("spectrograms", "spectra"):
        kept = [[trace for trace in chart[figure]["data"] if trace.get("name") != "Your mix"] for chart in charts]
        assert kept[0] and kept[1] == kept[0], figure


def test_a_rerender_advises_moving_the_fader_back_toward_the_automatic_mix(
        client, rendered_project, enqueued, django_capture_on_commit_callbacks):
    project_id = rendered_project["id"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project_id}/render/", render_request(rendered_project, gain_db=-6.0),
                               content_type="application/json")
    assert response.status_code == 202, response.content
    tasks.project_render(enqueued[-1][1])

    advice = client.get(f"/api/projects/{project_id}/versions/2/advice/").json()
    assert advice == client.get(f"/api/projects/{project_id}/versions/2/").json()["analysis"]["advice"]
    gains = [suggestion for suggestion in advice["suggestions"] if suggestion["kind"] == "gain"]
    # Version 1 rendered the defaults, so its automatic-mix preset, the target, has the fader at 0 dB.
    assert [suggestion["changes"] for suggestion in gains] == [[{"track": 0, "param": "gain_db",
                                                                 "value": pytest.approx(0.0, abs=0.1)}]]
    assert gains[0]["text"].startswith("Bass is 6.0 dB quieter")
