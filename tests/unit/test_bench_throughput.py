"""bench/throughput.py's figures and checks from made-up runs and worker logs (no servers)."""
import pytest

from bench.throughput import percentile, project_audio, summary

SUCCEEDED = "[2026-12-04 19:27:42,921: INFO/ForkPoolWorker-1] Task project_mix[{}] succeeded in 5.1s: None\n"
REFUSED = "[2026-12-04 19:27:43,000: INFO/ForkPoolWorker-1] job {} is finished or missing; nothing to do\n"


def a_run(index: int, submitted_s: float, done_s: float, **job) -> dict:
    job = {"id": f"job-{index}", "status": "succeeded", "attempts": 1, "version": 1, "error": "", **job}
    return {"job": job, "submitted_s": submitted_s, "done_s": done_s, "versions": 1,
            "file_bytes": {"wav24": 5000, "wav16": 4000, "flac": 3000}}


@pytest.fixture
def runs() -> list[dict]:
    # 10 jobs submitted at 0 s, done at 6, 12, ... 60 s.
    return [a_run(n, 0.0, 6.0 * (n + 1)) for n in range(10)]


def logs_for(count: int, *, warm: int = 2, extra: str = "") -> dict[str, str]:
    lines = [SUCCEEDED.format(f"{n:08x}-4c06-855f") for n in range(count + warm)]
    return {"gpu0": "".join(lines[::2]) + extra, "gpu1": "".join(lines[1::2])}


def test_rate_and_percentiles_from_first_submit_to_last_done(runs):
    figures = summary("sqlite", runs, logs_for(10), warmed=[a_run(-1, 0, 30), a_run(-2, 0, 31)])

    assert figures["jobs_per_minute"] == pytest.approx(10.0)
    assert figures["submit_to_done_p50_s"] == pytest.approx(33.0)
    assert figures["submit_to_done_p95_s"] == 60.0
    assert figures["jobs_per_worker_with_warmup"] == {"gpu0": 6, "gpu1": 6}
    assert figures["ran_once_each_by_the_logs"] and figures["one_attempt_each"] and figures["files_present_each"]


def test_a_repeated_message_a_second_attempt_or_a_missing_file_fail_the_checks(runs):
    runs[3]["job"]["attempts"] = 2
    del runs[4]["file_bytes"]["flac"]

    figures = summary("sqlite", runs, logs_for(10, extra=REFUSED.format("job-1")), warmed=[a_run(-1, 0, 1)] * 2)

    assert not figures["ran_once_each_by_the_logs"]
    assert not figures["one_attempt_each"]
    assert not figures["files_present_each"]


def test_percentile_is_nearest_rank():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile(list(range(1, 21)), 0.95) == 19


def test_each_project_has_its_own_audio():
    first, second = project_audio(0, stems=4, duration_s=0.5), project_audio(1, stems=4, duration_s=0.5)

    assert list(first) == ["01_Bass.wav", "02_Keys.wav", "03_Pad.wav", "04_Drums.wav"]
    assert all(first[name] != second[name] for name in first)
