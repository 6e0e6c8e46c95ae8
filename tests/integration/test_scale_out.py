"""The deployment's shape on loopback (bench/cluster.py): gunicorn, a worker on the ``gpu`` queue and one on
the ``default`` queue, as separate processes on a real Redis broker, media in S3 (moto's server), each
process with a media folder and a temporary folder of its own. Here the gpu worker has no CUDA and serves
its queue on the CPU."""
import re
import subprocess
import sys
import time

import pytest

from bench.cluster import REPO_DIR, Cluster
from webapp.config.celery import DEFAULT_QUEUE, GPU_QUEUE, HOUSEKEEPING_TASK, JOB_TASKS

from .services import s3_server  # noqa: F401 (fixture)
from .studio_helpers import reference_wav, render_request, session_stems
from .test_round_trip import redis_url  # noqa: F401 (fixture)
from .test_studio_worker import FAST_FIT, Studio

pytestmark = pytest.mark.slow

HOUSEKEEPING_TIMEOUT_S = 60


def task_lines(log: str, name: str) -> list[str]:
    return re.findall(rf"Task {name}\[[0-9a-f-]+\] succeeded", log)


@pytest.fixture
def deployment(tmp_path, clean_env, redis_url, s3_server):
    """``(cluster, folders)``: web and both workers running; ``folders[process]`` its media and temp folders."""
    env = clean_env(DJANGO_SETTINGS_MODULE="webapp.config.settings.local", MIXREF_VAR_DIR=str(tmp_path / "var"),
                    CELERY_BROKER_URL=redis_url, **FAST_FIT, **s3_server.env)
    folders = {}
    for name in ("web", GPU_QUEUE, DEFAULT_QUEUE):
        folders[name] = {"MEDIA_ROOT": tmp_path / name / "media", "TMPDIR": tmp_path / name / "tmp"}
        folders[name]["TMPDIR"].mkdir(parents=True)
    with Cluster(env, tmp_path / "logs") as cluster:
        cluster.migrate()
        for queue in (GPU_QUEUE, DEFAULT_QUEUE):
            cluster.worker(queue, queues=queue, **{k: str(v) for k, v in folders[queue].items()})
        cluster.web(**{k: str(v) for k, v in folders["web"].items()})
        yield cluster, folders


class _Output:
    """What Studio.job_finished prints when a job hangs: the processes' logs."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    @property
    def output(self) -> str:
        return "\n".join(f"--- {child.name}\n{child.log[-2000:]}" for child in self.cluster.children)


def test_mix_and_rerender_run_on_a_worker_that_shares_no_disk_with_the_web_server(deployment, s3_server, tmp_path):
    cluster, folders = deployment
    logs = _Output(cluster)
    studio = Studio(cluster.url)
    project = studio.call("POST", "/api/projects/", 201, json={"name": "Shared Nothing"}).json()
    base = f"/api/projects/{project['id']}/"
    stems = dict(list(session_stems(duration_s=4.0).items())[:2])
    studio.call("POST", base + "stems/", 201, files=[("files", (n, c, "audio/wav")) for n, c in stems.items()])
    studio.call("PUT", base + "reference/", 201, files={"file": ("Reference.wav", reference_wav(4.0), "audio/wav")})
    uploaded = set(s3_server.keys())

    mix = studio.job_finished(studio.call("POST", base + "mix/", 202, json={"method": "auto"}).json(), logs)
    rerender = studio.call("POST", base + "render/", 202,
                           json=render_request(studio.call("GET", base, 200).json(), gain_db=-3.0)).json()
    rerender = studio.job_finished(rerender, logs)

    assert [(job["status"], job["version"]) for job in (mix, rerender)] == [("succeeded", 1), ("succeeded", 2)], \
        logs.output
    written = sorted(set(s3_server.keys()) - uploaded)
    # Three formats of each version and one baseline (the stems did not change), all put by the worker, and the
    # reference's features in place of its audio (deleted after the first mix, the project's default).
    assert [key.split("/")[0] for key in written] == ["references"] + ["renders"] * 7, written
    version = studio.call("GET", base + "versions/2/", 200).json()
    assert studio.call("GET", version["downloads"]["wav24"], 200).content in [s3_server.read(k) for k in written]
    # Each result is one PUT, never a multipart upload a killed worker would leave in pieces.
    moto_log = (tmp_path / "moto.log").read_text()
    assert "?uploads" not in moto_log and "partNumber=" not in moto_log
    for key in written:
        assert len(re.findall(rf'"PUT /{s3_server.bucket}/{re.escape(key)} ', moto_log)) == 1, key
    # Nothing on any process's own disk: no media, and the worker's private temporary folders are gone.
    for name, folder in folders.items():
        assert not folder["MEDIA_ROOT"].exists() or not any(folder["MEDIA_ROOT"].rglob("*")), name
        assert [path.name for path in folder["TMPDIR"].iterdir() if path.name.startswith("mixref-")] == [], name


def test_jobs_run_on_the_gpu_queue_worker_and_housekeeping_on_the_default_one(deployment):
    cluster, _ = deployment
    logs = _Output(cluster)
    studio = Studio(cluster.url)
    project = studio.call("POST", "/api/projects/", 201, json={"name": "Routed"}).json()
    base = f"/api/projects/{project['id']}/"
    stems = dict(list(session_stems(duration_s=2.0).items())[:2])
    studio.call("POST", base + "stems/", 201, files=[("files", (n, c, "audio/wav")) for n, c in stems.items()])
    studio.call("PUT", base + "reference/", 201, files={"file": ("Reference.wav", reference_wav(2.0), "audio/wav")})

    job = studio.call("POST", base + "render/", 202, json=render_request(studio.call("GET", base, 200).json())).json()
    assert studio.job_finished(job, logs)["status"] == "succeeded", logs.output
    # As beat sends it: by name, routed by the app's task_routes.
    subprocess.run([sys.executable, "-m", "celery", "-A", "workers", "call", HOUSEKEEPING_TASK], cwd=REPO_DIR,
                   env=cluster.env, check=True, timeout=60, capture_output=True)
    gpu, default = (next(child for child in cluster.children if child.name == name)
                    for name in (GPU_QUEUE, DEFAULT_QUEUE))
    deadline = time.monotonic() + HOUSEKEEPING_TIMEOUT_S
    while not task_lines(default.log, HOUSEKEEPING_TASK) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert len(task_lines(gpu.log, JOB_TASKS["render"])) == 1, logs.output
    assert len(task_lines(default.log, HOUSEKEEPING_TASK)) == 1, logs.output
    assert task_lines(gpu.log, HOUSEKEEPING_TASK) == []
    assert task_lines(default.log, JOB_TASKS["render"]) == []
