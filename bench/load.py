"""Load on the web server while mixes run: ``--users`` visitors (locust) for ``--duration-s`` on loopback.

bench/cluster.py starts a real redis-server, a SQLite database, gunicorn (``--web-workers`` processes, keep-alive
5 s) on 127.0.0.1, one Celery worker on the ``gpu`` queue (concurrency 1) and one on ``default``. Each visitor
creates a project, uploads ``--stems`` stems of ``--stem-s`` seconds (tones and seeded noise, as in
bench/throughput.py) and a reference, the first ``--mixers`` of them submit the automatic mix; then every visitor
polls every 2 s: its job (while it runs), the project API, and every fifth time the studio page. 8 page loads
first warm the web workers up. Locust stops by itself after ``--duration-s``; then the jobs still running are
waited for (``--drain-s`` at most).

Printed: 5xx count and other failures, jobs completed, p50/p95/max of non-upload requests over the whole run
(and from the last upload's end on), of uploads apart, and the longest stall (the slowest non-upload request).
Figures only; nothing is asserted. Usage:

    MIXREF_FIT_TIME_BUDGET_S=5 .venv/bin/python bench/load.py --json var/bench/load.json   # 50 users, 180 s
    .venv/bin/python bench/load.py --users 5 --duration-s 30 --stem-s 5                    # a smoke run
"""
from __future__ import annotations

import gevent.monkey  # isort: skip

gevent.monkey.patch_all()  # before requests, as locust itself does

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from locust import HttpUser, constant_pacing, task  # noqa: E402
from locust.env import Environment  # noqa: E402

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))

from bench.cluster import Cluster, redis_server  # noqa: E402 (after the path)
from bench.throughput import (  # noqa: E402
    SETTINGS_PREFIXES,
    SETTINGS_VARIABLES,
    percentile,
    project_audio,
    reference_audio,
)

POLL_INTERVAL_S = 2.0
REQUEST_TIMEOUT_S = 120.0
UPLOADS = {"upload stems", "upload reference"}


class Visitor(HttpUser):
    """One visitor; the class attributes are set by main() before the run."""

    wait_time = constant_pacing(POLL_INTERVAL_S)
    audio: list[dict[str, bytes]] = []
    reference = b""
    mixers = 0
    jobs: dict[str, str] = {}  # job id -> last status seen, shared by all visitors
    counter = itertools.count()

    def on_start(self) -> None:
        self.index = next(Visitor.counter)
        self.ticks = 0
        self.job_id = None
        self.client.get("/", name="project list page")
        token = self.client.get("/api/session/", name="session API").json()["csrf_token"]
        self.client.headers["X-CSRFToken"] = token
        project = self._call("POST", "/api/projects/", 201, "create project", json={"name": f"Load {self.index}"})
        self.base = f"/api/projects/{project['id']}/"
        self.page = f"/projects/{project['id']}/"
        self.client.get(self.page, name="studio page")
        audio = Visitor.audio[self.index % len(Visitor.audio)]
        self._call("POST", self.base + "stems/", 201, "upload stems",
                   files=[("files", (name, data, "audio/wav")) for name, data in audio.items()])
        self._call("PUT", self.base + "reference/", 201, "upload reference",
                   files={"file": ("Reference.wav", Visitor.reference, "audio/wav")})
        if self.index < Visitor.mixers:
            job = self._call("POST", self.base + "mix/", 202, "submit mix", json={"method": "auto"})
            if job:
                self.job_id = job["id"]
                Visitor.jobs[self.job_id] = job["status"]

    def _call(self, method: str, path: str, expected: int, name: str, **kwargs) -> dict | None:
        with self.client.request(method, path, name=name, catch_response=True, timeout=REQUEST_TIMEOUT_S,
                                 **kwargs) as response:
            if response.status_code != expected:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return None
            return response.json()

    @task
    def poll(self) -> None:
        self.ticks += 1
        if self.job_id and Visitor.jobs[self.job_id] in {"queued", "running"}:
            job = self._call("GET", f"/api/jobs/{self.job_id}/", 200, "job API")
            if job:
                Visitor.jobs[self.job_id] = job["status"]
        if hasattr(self, "base"):
            self._call("GET", self.base, 200, "project API")
        if self.ticks % 5 == 0 and hasattr(self, "page"):
            self.client.get(self.page, name="studio page")


def figures(latencies_ms: list[float]) -> dict:
    if not latencies_ms:
        return {"count": 0}
    return {"count": len(latencies_ms), "p50_ms": round(statistics.median(latencies_ms)),
            "p95_ms": round(percentile(latencies_ms, 0.95)), "max_ms": round(max(latencies_ms))}


def drain(url: str, jobs: dict[str, str], limit_s: float) -> float:
    """Waits for the jobs still queued or running (GET /api/jobs/<id>/ needs no session); returns the wait."""
    started_s = time.monotonic()
    while any(status in {"queued", "running"} for status in jobs.values()):
        if time.monotonic() - started_s > limit_s:
            break
        time.sleep(POLL_INTERVAL_S)
        for job_id, status in jobs.items():
            if status in {"queued", "running"}:
                response = requests.get(f"{url}/api/jobs/{job_id}/", timeout=REQUEST_TIMEOUT_S)
                if response.status_code == 200:
                    jobs[job_id] = response.json()["status"]
    return time.monotonic() - started_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration-s", type=float, default=180.0)
    parser.add_argument("--mixers", type=int, default=10, help="visitors that submit an automatic mix")
    parser.add_argument("--stems", type=int, default=4)
    parser.add_argument("--stem-s", type=float, default=30.0, help="length of each generated stem")
    parser.add_argument("--spawn-rate", type=float, default=5.0, help="visitors started per second")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--drain-s", type=float, default=900.0, help="longest wait for the jobs after the load")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    Visitor.audio = [project_audio(i, stems=args.stems, duration_s=args.stem_s) for i in range(args.users)]
    Visitor.reference = reference_audio(args.stem_s)
    Visitor.mixers = args.mixers
    samples: list[dict] = []

    def on_request(request_type, name, response_time, response_length, response=None, exception=None, **_) -> None:
        status = getattr(response, "status_code", 0) or 0
        samples.append({"name": name, "ms": response_time, "status": status, "failed": exception is not None,
                        "at_s": time.monotonic()})

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mixref-bench-load-")))
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(SETTINGS_PREFIXES) and name not in SETTINGS_VARIABLES}
        env |= {"DJANGO_SETTINGS_MODULE": "webapp.config.settings.local", "MIXREF_VAR_DIR": str(folder / "var"),
                "CELERY_BROKER_URL": stack.enter_context(redis_server(folder)), "DJANGO_LOG_LEVEL": "INFO"}
        cluster = stack.enter_context(Cluster(env, folder / "logs"))
        cluster.migrate()
        cluster.worker("gpu0", queues="gpu")
        cluster.worker("default", queues="default")
        url = cluster.web(workers=args.web_workers)
        # A few pages first, in parallel, so that each gunicorn worker's first request (imports) is not a figure.
        gevent.joinall([gevent.spawn(requests.get, url + "/", timeout=REQUEST_TIMEOUT_S) for _ in range(8)])
        environment = Environment(user_classes=[Visitor], host=url)
        environment.events.request.add_listener(on_request)
        runner = environment.create_local_runner()
        started_s = time.monotonic()
        load_1 = os.getloadavg()[0]
        runner.start(args.users, spawn_rate=args.spawn_rate)
        gevent.spawn_later(args.duration_s, runner.quit)
        runner.greenlet.join()
        load_s = time.monotonic() - started_s
        load_2 = os.getloadavg()[0]
        drained_s = drain(url, Visitor.jobs, args.drain_s)
    non_upload = [s["ms"] for s in samples if s["name"] not in UPLOADS]
    last_upload_s = max((s["at_s"] for s in samples if s["name"] in UPLOADS), default=started_s)
    slowest = max((s for s in samples if s["name"] not in UPLOADS), key=lambda s: s["ms"], default=None)
    by_name = {name: figures([s["ms"] for s in samples if s["name"] == name])
               for name in sorted({s["name"] for s in samples})}
    report = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "fit_budget_s": os.environ.get("MIXREF_FIT_TIME_BUDGET_S", "20 (the default)"),
        "cpus": os.cpu_count(), "load_average_1min_start_end": [round(load_1, 1), round(load_2, 1)],
        "load_s": round(load_s, 1),
        "requests": len(samples),
        "server_errors_5xx": sum(1 for s in samples if s["status"] >= 500),
        "other_failures": sum(1 for s in samples if s["failed"] and s["status"] < 500),
        "jobs_submitted": len(Visitor.jobs),
        "jobs_succeeded": sum(1 for status in Visitor.jobs.values() if status == "succeeded"),
        "jobs_by_status": {status: list(Visitor.jobs.values()).count(status) for status in set(Visitor.jobs.values())},
        "drain_after_load_s": round(drained_s, 1),
        "non_upload": figures(non_upload),
        "uploads": figures([s["ms"] for s in samples if s["name"] in UPLOADS]),
        # The same once the last upload has ended (mixes still running): what the uploads themselves cost.
        "last_upload_done_at_s": round(last_upload_s - started_s, 1),
        "non_upload_after_uploads": figures([s["ms"] for s in samples if s["name"] not in UPLOADS
                                             and s["at_s"] - s["ms"] / 1000 > last_upload_s]),
        "longest_stall": slowest and {"name": slowest["name"], "ms": round(slowest["ms"]),
                                      "at_s": round(slowest["at_s"] - started_s, 1)},
        "by_name": by_name,
    }
    print(json.dumps(report, indent=2), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
