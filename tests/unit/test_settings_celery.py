"""The Celery app as a worker process loads it: settings read in a fresh interpreter."""
import json
import subprocess
import sys

from tests.conftest import REPO_DIR

READ_WORKER_CONFIG = """
import json, sys
from workers import app
app.loader.import_default_modules()
conf = app.conf
print(json.dumps({
    "torch_loaded": "torch" in sys.modules,
    "tasks": sorted(name for name in app.tasks if not name.startswith("celery.")),
    **{name: conf[name] for name in (
        "broker_url", "task_serializer", "result_serializer", "accept_content", "task_ignore_result",
        "task_acks_late", "task_reject_on_worker_lost", "worker_prefetch_multiplier",
        "task_soft_time_limit", "task_time_limit", "broker_transport_options")},
}))
"""


def worker_config(clean_env, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", READ_WORKER_CONFIG], cwd=REPO_DIR, env=clean_env(**env),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_worker_runs_json_only_late_acked_one_at_a_time_with_limits(clean_env, tmp_path):
    config = worker_config(clean_env, MIXREF_VAR_DIR=str(tmp_path), REDIS_URL="redis://redis:6379/0")

    assert config["broker_url"] == "redis://redis:6379/0"
    assert config["task_serializer"] == config["result_serializer"] == "json"
    assert config["accept_content"] == ["json"]
    assert config["task_ignore_result"] is True
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    options = config["broker_transport_options"]
    # Redis must not hand a running job to a second worker: visibility outlasts the hard limit.
    assert config["task_soft_time_limit"] < config["task_time_limit"] < options["visibility_timeout"]
    assert options["unacked_restore_interval"] <= 5


def test_time_limits_follow_environment(clean_env, tmp_path):
    config = worker_config(clean_env, MIXREF_VAR_DIR=str(tmp_path), MIXREF_TASK_SOFT_TIME_LIMIT_S="120")

    assert config["task_soft_time_limit"] == 120
    assert config["task_time_limit"] > 120


def test_worker_parent_registers_tasks_without_loading_torch(clean_env, tmp_path):
    config = worker_config(clean_env, MIXREF_VAR_DIR=str(tmp_path))

    assert "audio_file_measure_loudness" in config["tasks"]
    # Forked pool children cannot use a CUDA context inherited from the parent.
    assert config["torch_loaded"] is False
