"""The Celery app as a worker process and as the web process load it: settings read in a fresh
interpreter."""
import json
import subprocess
import sys

from tests.conftest import REPO_DIR
from webapp.config.celery import HOUSEKEEPING_TASK, JOB_TASKS, JOBS_SWEEP_TASK
from webapp.core.models import Job

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


IMPORT_WEB_SERVICES = """
import json, sys
import django
django.setup()
import webapp.studio.services, webapp.core.services
from webapp.config.celery import app
print(json.dumps({
    "modules": sorted(name for name in sys.modules if name.split(".")[0] in {"workers", "celery"}),
    "tasks": sorted(name for name in app.tasks if not name.startswith("celery.")),
    "broker_url": app.conf.broker_url,
}))
"""


def run_python(code: str, clean_env, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_DIR, env=clean_env(**env),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def worker_config(clean_env, **env: str) -> dict:
    return run_python(READ_WORKER_CONFIG, clean_env, **env)


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

    assert config["tasks"] == sorted([*JOB_TASKS.values(), HOUSEKEEPING_TASK, JOBS_SWEEP_TASK])
    # Forked pool children cannot use a CUDA context inherited from the parent.
    assert config["torch_loaded"] is False


def test_every_kind_of_job_has_its_task():
    assert sorted(JOB_TASKS) == sorted(Job.Kind.values)


def test_web_services_send_tasks_by_name_without_importing_the_worker(clean_env, tmp_path):
    loaded = run_python(IMPORT_WEB_SERVICES, clean_env, MIXREF_VAR_DIR=str(tmp_path), REDIS_URL="redis://redis:6379/0",
                        DJANGO_SETTINGS_MODULE="webapp.config.settings.local")

    assert not [name for name in loaded["modules"] if name.split(".")[0] == "workers"], loaded["modules"]
    # A producer only: no worker was built and no task is registered in the web process.
    assert "celery.apps.worker" not in loaded["modules"]
    assert loaded["tasks"] == []
    # The same settings as the worker's, so both meet at the same broker.
    assert loaded["broker_url"] == "redis://redis:6379/0"


READ_ROUTES = """
import json
from workers import app
app.loader.import_default_modules()
from webapp.config.celery import GPU_TASKS
tasks = sorted(name for name in app.tasks if not name.startswith("celery."))
print(json.dumps({
    "queues": {name: app.amqp.router.route({}, name)["queue"].name for name in tasks},
    "beat": {name: entry["task"] for name, entry in app.conf.beat_schedule.items()},
    "gpu_tasks": GPU_TASKS,
}))
"""


def test_mixes_and_renders_go_to_the_gpu_queue_and_the_rest_to_default(clean_env, tmp_path):
    config = run_python(READ_ROUTES, clean_env, MIXREF_VAR_DIR=str(tmp_path))

    assert config["queues"] == {"housekeeping": "default", "jobs_sweep": "default", "project_mix": "gpu",
                                "project_render": "gpu", "project_stems": "gpu"}
    # Every periodic task is a registered one.
    assert set(config["beat"].values()) <= config["queues"].keys()
