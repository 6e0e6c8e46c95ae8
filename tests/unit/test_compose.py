"""docker-compose.yml wires the scaled deployment together (no Docker engine here: parsed only)."""
import re
from urllib.parse import SplitResult, urlsplit

import pytest
import yaml

from tests.conftest import REPO_DIR
from webapp.config.celery import DEFAULT_QUEUE, GPU_QUEUE


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())["services"]


def parsed_url(value: str) -> SplitResult:
    """``value`` with compose's ${VARIABLE:...} substitutions replaced by a plain word, parsed."""
    return urlsplit(re.sub(r"\$\{[^}]*\}", "value", value))


def depends_on(service: dict) -> dict:
    return service.get("depends_on", {})


def test_all_services_of_the_deployment_are_defined(services):
    assert {"web", "worker", "worker-default", "beat", "redis", "postgres", "minio", "createbuckets"} <= services.keys()


@pytest.mark.parametrize("name", ["web", "worker", "worker-default", "beat"])
def test_web_and_worker_reach_postgres_redis_and_minio(services, name):
    env = services[name]["environment"]

    assert env["DJANGO_SETTINGS_MODULE"] == "webapp.config.settings.production"
    assert parsed_url(env["DATABASE_URL"]).scheme == "postgres"
    assert parsed_url(env["DATABASE_URL"]).hostname == "postgres"
    assert parsed_url(env["CELERY_BROKER_URL"]).hostname == "redis"
    assert parsed_url(env["AWS_S3_ENDPOINT_URL"]).hostname == "minio"
    assert env["AWS_STORAGE_BUCKET_NAME"]
    assert {"postgres", "redis", "createbuckets", "migrate"} <= depends_on(services[name]).keys()
    assert depends_on(services[name])["createbuckets"]["condition"] == "service_completed_successfully"


def test_bucket_service_creates_the_bucket_the_apps_use(services):
    bucket = services["web"]["environment"]["AWS_STORAGE_BUCKET_NAME"]
    creator = services["createbuckets"]

    assert creator["image"].startswith("minio/mc:")
    assert creator["environment"]["MIXREF_BUCKET"] == bucket
    assert "mc mb --ignore-existing" in creator["entrypoint"]
    assert depends_on(creator)["minio"]["condition"] == "service_healthy"


def test_worker_reserves_a_gpu_and_takes_one_job_at_a_time(services):
    worker = services["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    command = worker["command"].split()

    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert command[:4] == ["celery", "-A", "workers", "worker"]
    for flag, value in [("--pool", "prefork"), ("--concurrency", "1"), ("--prefetch-multiplier", "1")]:
        assert command[command.index(flag) + 1] == value
    # PyPI's Linux torch wheels carry CUDA; the CPU index would make a GPU-less worker.
    assert "cpu" not in worker["build"]["args"]["TORCH_INDEX_URL"]


def test_web_runs_gunicorn_from_the_shared_image(services):
    web = services["web"]
    dockerfile = REPO_DIR / web["build"]["context"] / web["build"]["dockerfile"]

    assert dockerfile.is_file()
    assert "gunicorn" in dockerfile.read_text()
    assert "command" not in web  # the image's gunicorn CMD


def test_redis_keeps_queued_jobs_across_restarts(services):
    assert "--appendonly yes" in services["redis"]["command"]


def test_images_of_third_party_services_are_pinned(services):
    for name in ["redis", "postgres", "minio", "createbuckets"]:
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
    assert services["minio"]["image"].split(":", 1)[1].startswith("RELEASE.")



def queues_of(service: dict) -> list[str]:
    command = service["command"].split()
    return command[command.index("--queues") + 1].split(",")


def test_one_worker_per_queue_and_one_beat_send_the_periodic_tasks(services):
    assert queues_of(services["worker"]) == [GPU_QUEUE]
    assert queues_of(services["worker-default"]) == [DEFAULT_QUEUE]
    # Light work needs no GPU: the CPU image, no device reserved.
    assert services["worker-default"]["image"] == services["web"]["image"]
    assert "deploy" not in services["worker-default"]
    assert services["beat"]["command"].split()[:4] == ["celery", "-A", "workers", "beat"]
    assert not any(" -B" in str(service.get("command", "")) for service in services.values())
