"""Faults with a real worker and a real Redis: the whole app (web and worker) is killed with SIGKILL
while a job runs, so Redis keeps its message unacknowledged until the visibility timeout (half an
hour). A new app's worker finds the job's heartbeat stale and requeues it: done within 2 minutes."""
import time

import pytest
import requests

from .studio_helpers import reference_wav, session_stems
from .test_round_trip import redis_url, start_app  # noqa: F401 (fixtures)
from .test_studio_worker import FAST_FIT

pytestmark = pytest.mark.slow

RECOVERY_LIMIT_S = 120
# Short, so that the test waits seconds rather than the defaults' minute.
FAST_SWEEP = {"MIXREF_JOB_HEARTBEAT_S": "1", "MIXREF_JOB_STALE_S": "8"}


def _wait_for(session: requests.Session, url: str, done, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = session.get(url, timeout=10).json()
        if done(job):
            return job
        time.sleep(0.3)
    pytest.fail(f"waited {timeout_s} s: {job}")


def test_a_job_whose_whole_worker_was_killed_is_done_by_the_next_worker_within_2_minutes(redis_url, start_app):
    env = {"CELERY_BROKER_URL": redis_url, **FAST_FIT, **FAST_SWEEP}
    app = start_app(**env)
    session = requests.Session()
    session.headers["X-CSRFToken"] = session.get(f"{app.url}/api/session/", timeout=10).json()["csrf_token"]
    project = session.post(f"{app.url}/api/projects/", json={"name": "Killed"}, timeout=10).json()
    base = f"/api/projects/{project['id']}/"
    stems = list(session_stems(duration_s=4.0).items())[:3]
    assert session.post(app.url + base + "stems/", files=[("files", (n, c, "audio/wav")) for n, c in stems],
                        timeout=60).status_code == 201
    assert session.put(app.url + base + "reference/", files={"file": ("Ref.wav", reference_wav(4.0), "audio/wav")},
                       timeout=60).status_code == 201
    job_url = session.post(app.url + base + "mix/", json={}, timeout=30).json()["url"]
    _wait_for(session, app.url + job_url, lambda job: job["status"] == "running", 60)

    app.kill()  # web, worker and its pool child, all at once
    second = start_app(**env)
    restarted_s = time.monotonic()
    job = _wait_for(session, second.url + job_url, lambda job: job["status"] in {"succeeded", "failed"},
                    RECOVERY_LIMIT_S)

    assert (job["status"], job["attempts"], job["version"]) == ("succeeded", 2, 1), f"{job}\n{second.output}"
    assert time.monotonic() - restarted_s < RECOVERY_LIMIT_S
    # The project takes new work again (before the fix every new mix answered 409).
    assert session.post(second.url + base + "mix/", json={}, timeout=30).status_code == 202
