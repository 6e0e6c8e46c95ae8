"""The quick start for real: ./scripts/start.sh runs gunicorn, a separate Celery worker
(prefork, concurrency 1, both queues) and beat; stems and a reference go in over HTTP, the worker renders them, Ctrl-C
stops both.
Once on the embedded filesystem broker, once on a redis-server of the test's own."""
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import REPO_DIR
from webapp.config.celery import GPU_QUEUE

from .studio_helpers import reference_wav, render_request, session_stems

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 120
JOB_TIMEOUT_S = 90
STOP_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of this test's own, on a free loopback port, storing nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing; scripts/test.sh installs it")
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)


class RunningApp:
    """./scripts/start.sh in a session of its own, its output collected by a thread."""

    def __init__(self, env: dict[str, str]):
        self.process = subprocess.Popen(
            [str(REPO_DIR / "scripts" / "start.sh")], cwd=REPO_DIR, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        self.url: str | None = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"Mixref is running at (\S+)", line)
            if found:
                self.url = found.group(1).rstrip("/")
                self.ready.set()
        self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines[-60:])

    def child_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"^==> (?:web|worker|beat): pid (\d+)", "".join(self.lines), re.M)]

    def interrupt(self) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        for pid in [self.process.pid, *self.child_pids()]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def start_app(tmp_path, clean_env):
    """``start_app(**env)``: the app on a free port with its state in a temporary folder."""
    apps = []

    def start(**env: str) -> RunningApp:
        app = RunningApp(clean_env(MIXREF_SKIP_INSTALL="1", MIXREF_VAR_DIR=str(tmp_path / "var"),
                                   PORT=str(free_port()), **env))
        apps.append(app)
        if not app.ready.wait(START_TIMEOUT_S) or app.url is None:
            pytest.fail(f"start.sh did not announce its URL:\n{app.output}")
        return app

    yield start
    for app in apps:
        if app.process.poll() is None:
            app.kill()


def render_through_http(app: RunningApp) -> dict:
    """The finished job of a render of two short stems with default settings, sent as a browser sends it."""
    session = requests.Session()
    session.headers["X-CSRFToken"] = session.get(f"{app.url}/api/session/", timeout=10).json()["csrf_token"]
    project = session.post(f"{app.url}/api/projects/", json={"name": "Round Trip"}, timeout=10).json()
    base = f"{app.url}/api/projects/{project['id']}/"
    stems = list(session_stems(duration_s=2.0).items())[:2]
    added = session.post(base + "stems/", files=[("files", (name, content, "audio/wav")) for name, content in stems],
                         timeout=60)
    assert added.status_code == 201, added.text
    reference = session.put(base + "reference/", files={"file": ("Ref.wav", reference_wav(2.0), "audio/wav")},
                            timeout=60)
    assert reference.status_code == 201, reference.text
    response = session.post(base + "render/", json=render_request(session.get(base, timeout=10).json()), timeout=30)
    assert response.status_code == 202, f"{response.text}\n{app.output}"
    job_url = app.url + response.json()["url"]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = session.get(job_url, timeout=10).json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        time.sleep(0.2)
    pytest.fail(f"the job did not finish within {JOB_TIMEOUT_S} s: {job}\n{app.output}")


def assert_stops_cleanly_on_ctrl_c(app: RunningApp) -> None:
    children = app.child_pids()
    assert len(children) == 3, app.output
    assert app.interrupt() == 0, app.output
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_worker_process_renders_uploaded_stems_and_ctrl_c_stops_everything(broker, request, start_app, tmp_path):
    env = {}
    if broker == "redis":
        env["CELERY_BROKER_URL"] = request.getfixturevalue("redis_url")
    app = start_app(**env)

    job = render_through_http(app)

    assert (job["status"], job["kind"], job["version"]) == ("succeeded", "render", 1), f"{job}\n{app.output}"
    # The message really went through the broker under test, to the gpu queue that start.sh's worker serves
    # beside the default one.
    if broker == "redis":
        assert redis.Redis.from_url(env["CELERY_BROKER_URL"]).exists(f"_kombu.binding.{GPU_QUEUE}")
    else:
        assert Path(tmp_path / "var" / "broker" / "control" / f"{GPU_QUEUE}.exchange").is_file()
    assert_stops_cleanly_on_ctrl_c(app)
