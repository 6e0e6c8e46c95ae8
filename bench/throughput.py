"""Throughput of the deployment's shape on this machine: how many automatic mixes per minute two workers finish
when many users submit at once, and how long each user waits.

It starts a real redis-server, the database (a SQLite file, or a throwaway PostgreSQL cluster), gunicorn on
loopback and ``--workers`` Celery worker processes on the ``gpu`` queue (concurrency 1 each, as on a GPU
machine; here on the CPU), plus one on the ``default`` queue, all from bench/cluster.py, with media in a local
folder. Then ``--projects`` visitors at once, each in a thread with its own session, each create a project,
upload ``--stems`` stems of ``--duration-s`` (made here: tones and noise, different per project) and a
reference, submit the automatic mix and poll ``/api/jobs/<id>/`` until it is done.

Printed per database: jobs per minute (finished jobs over the time from the first submit to the last job done),
p50 and p95 of submit to done, and the checks that every job ran exactly once with its files present: each job
succeeded after one attempt with version 1, the workers' logs report each job id succeeded once, and every
version's three files download with the right sizes. The fit's time budget is ``MIXREF_FIT_TIME_BUDGET_S`` from
this environment (the app's default is 20 s). Figures only; nothing is asserted about time. Usage:

    .venv/bin/python bench/throughput.py                                  # 20 projects, 4 stems x 30 s, both databases
    MIXREF_FIT_TIME_BUDGET_S=5 .venv/bin/python bench/throughput.py --databases postgres --json var/bench/tp.json
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests
import soundfile

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))

from bench.cluster import Cluster, postgres_server, redis_server  # noqa: E402 (after the path)

SAMPLE_RATE_HZ = 44100
POLL_INTERVAL_S = 0.5
JOB_TIMEOUT_S = 1800.0
REQUEST_TIMEOUT_S = 120.0
SETTINGS_PREFIXES = ("DJANGO_", "AWS_", "CELERY_")
SETTINGS_VARIABLES = {"DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "PORT", "MIXREF_VAR_DIR"}


def wav_bytes(audio: np.ndarray) -> bytes:
    """A 16-bit WAV of ``audio`` (channels, samples)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, audio.T, SAMPLE_RATE_HZ, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def project_audio(index: int, *, stems: int, duration_s: float) -> dict[str, bytes]:
    """``stems`` stems of a small song, different for each project: tones a little apart, seeded noise."""
    rng = np.random.default_rng(index)
    times_s = np.arange(round(duration_s * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    pulse = (np.sin(2 * np.pi * 2.0 * times_s) > 0).astype(np.float32)
    base_hz = 55.0 * (1.0 + 0.05 * (index % 7))
    makers = [
        ("Bass", lambda: 0.4 * np.sin(2 * np.pi * base_hz * times_s)[None]),
        ("Keys", lambda: (0.2 * np.sin(2 * np.pi * 8 * base_hz * times_s)
                          + 0.1 * np.sin(2 * np.pi * 12 * base_hz * times_s))[None]),
        ("Pad", lambda: 0.05 * rng.standard_normal((2, times_s.size))),
        ("Drums", lambda: 0.2 * rng.standard_normal((1, times_s.size)) * pulse),
    ]
    return {f"{n + 1:02d}_{makers[n % 4][0]}.wav": wav_bytes(makers[n % 4][1]().astype(np.float32))
            for n in range(stems)}


def reference_audio(duration_s: float) -> bytes:
    rng = np.random.default_rng(1000)
    times_s = np.arange(round(duration_s * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    song = 0.15 * rng.standard_normal((2, times_s.size)) + 0.3 * np.sin(2 * np.pi * 110.0 * times_s)
    return wav_bytes(np.clip(song, -1, 1).astype(np.float32))


def visitor(url: str, index: int, audio: dict[str, bytes], reference: bytes, start: threading.Barrier) -> dict:
    """One visitor: a project, its uploads, then (with everyone else at once) the mix, polled until done."""
    http = requests.Session()
    http.headers["X-CSRFToken"] = http.get(f"{url}/api/session/", timeout=REQUEST_TIMEOUT_S).json()["csrf_token"]

    def call(method: str, path: str, expected: int, **kwargs) -> requests.Response:
        response = http.request(method, url + path, timeout=REQUEST_TIMEOUT_S, **kwargs)
        if response.status_code != expected:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response

    project = call("POST", "/api/projects/", 201, json={"name": f"Throughput {index}"}).json()
    base = f"/api/projects/{project['id']}/"
    call("POST", base + "stems/", 201, files=[("files", (name, data, "audio/wav")) for name, data in audio.items()])
    call("PUT", base + "reference/", 201, files={"file": ("Reference.wav", reference, "audio/wav")})
    start.wait()
    submitted_s = time.monotonic()
    job = call("POST", base + "mix/", 202, json={"method": "auto"}).json()
    while job["status"] in {"queued", "running"}:
        if time.monotonic() - submitted_s > JOB_TIMEOUT_S:
            raise RuntimeError(f"job {job['id']} not done within {JOB_TIMEOUT_S} s")
        time.sleep(POLL_INTERVAL_S)
        job = call("GET", f"/api/jobs/{job['id']}/", 200).json()
    done_s = time.monotonic()
    sizes = {}
    if job["status"] == "succeeded":
        version = call("GET", f"{base}versions/{job['version']}/", 200).json()
        for name, path in version["downloads"].items():
            if name != "preset":
                sizes[name] = len(call("GET", path, 200).content)
    versions = len(call("GET", base, 200).json()["versions"])
    return {"job": job, "submitted_s": submitted_s, "done_s": done_s, "file_bytes": sizes, "versions": versions}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def run(database: str, args: argparse.Namespace, audio: list[dict[str, bytes]], reference: bytes) -> dict:
    warmup_audio = project_audio(99, stems=2, duration_s=3.0)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mixref-bench-tp-")))
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(SETTINGS_PREFIXES) and name not in SETTINGS_VARIABLES}
        env |= {"DJANGO_SETTINGS_MODULE": "webapp.config.settings.local", "MIXREF_VAR_DIR": str(folder / "var"),
                "CELERY_BROKER_URL": stack.enter_context(redis_server(folder)), "DJANGO_LOG_LEVEL": "INFO"}
        if database == "postgres":
            env["DATABASE_URL"] = stack.enter_context(postgres_server())
        cluster = stack.enter_context(Cluster(env, folder / "logs"))
        cluster.migrate()
        workers = [cluster.worker(f"gpu{n}", queues="gpu") for n in range(args.workers)]
        cluster.worker("default", queues="default")
        url = cluster.web(threads=max(8, args.projects + 4))
        # One short mix per worker first (a worker takes one job at a time, so each gets one): the imports and
        # JIT compilation a long-running worker paid long ago stay out of the figures.
        warm = threading.Barrier(args.workers)
        with ThreadPoolExecutor(args.workers) as pool:
            warmed = list(pool.map(lambda i: visitor(url, -1 - i, warmup_audio, reference, warm), range(args.workers)))
        start = threading.Barrier(args.projects)
        with ThreadPoolExecutor(args.projects) as pool:
            runs = list(pool.map(lambda i: visitor(url, i, audio[i], reference, start), range(args.projects)))
        logs = {worker.name: worker.log for worker in workers}
    return summary(database, runs, logs, warmed)


def summary(database: str, runs: list[dict], worker_logs: dict[str, str], warmed: list[dict]) -> dict:
    """The figures of one database's run; ``worker_logs``: each gpu-queue worker's log by name, ``warmed``:
    the warm-up mixes, counted apart."""
    first_submit_s = min(run["submitted_s"] for run in runs)
    last_done_s = max(run["done_s"] for run in runs)
    waits_s = [run["done_s"] - run["submitted_s"] for run in runs]
    succeeded = [run for run in runs if run["job"]["status"] == "succeeded"]
    ran = {name: len(re.findall(r"Task project_mix\[[0-9a-f-]+\] succeeded", log)) for name, log in worker_logs.items()}
    # webapp.core.services.job_claim logs every message it refuses because its job had already run.
    repeated = sum(len(re.findall(r"job \S+ is finished or missing", log)) for log in worker_logs.values())
    return {
        "database": database,
        "warmup_s": [round(run["done_s"] - run["submitted_s"], 1) for run in warmed],
        "jobs": len(runs),
        "succeeded": len(succeeded),
        "jobs_per_minute": 60.0 * len(succeeded) / (last_done_s - first_submit_s),
        "wall_s": last_done_s - first_submit_s,
        "submit_to_done_p50_s": statistics.median(waits_s),
        "submit_to_done_p95_s": percentile(waits_s, 0.95),
        "submit_to_done_max_s": max(waits_s),
        "one_attempt_each": all(run["job"]["attempts"] == 1 for run in runs),
        "version_1_each": all(run["job"]["version"] == 1 and run["versions"] == 1 for run in runs),
        "jobs_per_worker_with_warmup": ran,
        "ran_once_each_by_the_logs": sum(ran.values()) == len(runs) + len(warmed) and repeated == 0,
        "files_present_each": all(len(run["file_bytes"]) == 3 and min(run["file_bytes"].values()) > 1000
                                  for run in succeeded),
        "errors": sorted({run["job"]["error"] for run in runs if run["job"]["error"]}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--stems", type=int, default=4)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2, help="gpu-queue worker processes (concurrency 1 each)")
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    audio = [project_audio(i, stems=args.stems, duration_s=args.duration_s) for i in range(args.projects)]
    reference = reference_audio(args.duration_s)
    fit_budget_s = os.environ.get("MIXREF_FIT_TIME_BUDGET_S", "20 (the default)")
    print(f"{args.projects} projects x {args.stems} stems x {args.duration_s:g} s, {args.workers} gpu-queue workers, "
          f"fit budget {fit_budget_s} s", flush=True)
    results = []
    for database in args.databases:
        result = run(database, args, audio, reference)
        results.append(result)
        print(json.dumps(result, indent=2), flush=True)
    report = {"date": datetime.now(UTC).isoformat(timespec="minutes"), "fit_budget_s": fit_budget_s,
              "args": {k: str(v) for k, v in vars(args).items()}, "results": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
