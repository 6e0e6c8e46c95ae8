"""The studio end to end, for real: ./scripts/start.sh runs the web server and a Celery worker on the
filesystem broker; four 6-second stems and a reference go in over HTTP, the worker makes the
automatic mix, then a re-render with one fader moved makes a second version that sounds different."""
import time

import pytest
import requests

from .studio_helpers import reference_wav, session_stems
from .test_round_trip import start_app  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 240
# Small enough that the fit takes seconds on two shared cores; the pipeline is tested elsewhere.
FAST_FIT = {"MIXREF_FIT_TIME_BUDGET_S": "2", "MIXREF_FIT_ITERATIONS": "3"}


class Studio:
    """A browser's session with the running app."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        token = self.http.get(f"{url}/api/session/", timeout=10).json()["csrf_token"]
        self.http.headers["X-CSRFToken"] = token

    def call(self, method: str, path: str, expected: int, **kwargs):
        response = self.http.request(method, self.url + path, timeout=60, **kwargs)
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response

    def job_finished(self, job: dict, app) -> dict:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while job["status"] in {"queued", "running"}:
            if time.monotonic() > deadline:
                pytest.fail(f"the job did not finish within {JOB_TIMEOUT_S} s: {job}\n{app.output}")
            time.sleep(0.3)
            job = self.call("GET", f"/api/jobs/{job['id']}/", 200).json()
        return job


def test_worker_mixes_uploaded_stems_and_a_rerender_makes_a_different_second_version(start_app):
    app = start_app(**FAST_FIT)
    studio = Studio(app.url)
    project = studio.call("POST", "/api/projects/", 201, json={"name": "Worker Song"}).json()
    base = f"/api/projects/{project['id']}/"
    for name, content in session_stems(duration_s=6.0).items():
        # One file per request, as the studio page sends them.
        answer = studio.call("POST", base + "stems/", 201, files={"files": (name, content, "audio/wav")}).json()
        assert answer["rejected"] == [], answer
    studio.call("PUT", base + "reference/", 201, files={"file": ("Reference.wav", reference_wav(), "audio/wav")})

    mix_job = studio.call("POST", base + "mix/", 202, json={"method": "auto"}).json()
    assert studio.call("GET", base, 200).json()["active_job"]["id"] == mix_job["id"]
    mix_job = studio.job_finished(mix_job, app)

    assert (mix_job["status"], mix_job["kind"], mix_job["version"]) == ("succeeded", "mix", 1), app.output
    first = studio.call("GET", base + "versions/1/", 200).json()
    assert first["method"] == "auto" and first["params"] == first["auto_params"]
    stems = studio.call("GET", base, 200).json()["stems"]
    params = first["params"]
    params["tracks"][0]["params"]["gain_db"] = min(params["tracks"][0]["params"]["gain_db"] + 12.0, 24.0)
    render_job = studio.call("POST", base + "render/", 202, json={
        "params": params, "muted": [stems[2]["id"]], "solo": [], "base_version": 1,
    }).json()
    render_job = studio.job_finished(render_job, app)

    assert (render_job["status"], render_job["kind"], render_job["version"]) == ("succeeded", "render", 2), render_job
    second = studio.call("GET", base + "versions/2/", 200).json()
    assert second["method"] == "manual" and second["muted"] == [stems[2]["id"]]
    # The worker kept the session from the mix: only the track whose fader moved was processed again.
    assert f"job {render_job['id']} re-processed 1 tracks" in "".join(app.lines), app.output
    assert second["auto_params"] == first["auto_params"]
    project = studio.call("GET", base, 200).json()
    assert (project["status"], project["current_version"], project["active_job"]) == ("mixed", 2, None)
    first_audio = studio.call("GET", first["audio_url"], 200).content
    second_audio = studio.call("GET", second["audio_url"], 200).content
    assert len(first_audio) == len(second_audio) and first_audio != second_audio
    part = studio.call("GET", second["audio_url"], 206, headers={"Range": "bytes=44-1043"})
    assert part.content == second_audio[44:1044]
    charts = studio.call("GET", base + "versions/2/charts/", 200).json()
    assert set(charts) == {"spectrograms", "spectra", "features", "levels"}
