"""Settings switched by environment variables, each read in a fresh interpreter so that the
variables of this process (and the test settings) cannot leak in."""
import json
import secrets
import subprocess
import sys

import boto3
import pytest
from django.core.files.base import ContentFile
from moto import mock_aws

from tests.conftest import REPO_DIR

PRODUCTION = "webapp.config.settings.production"
LOCAL = "webapp.config.settings.local"

READ_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in %r}, default=str))
"""


def settings_of(module: str, env: dict[str, str], *names: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS % (names,)],
        cwd=REPO_DIR, env={**env, "DJANGO_SETTINGS_MODULE": module}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def production_env(clean_env, tmp_path) -> dict[str, str]:
    return clean_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="mixref.example.org",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://mixref.example.org",
        MIXREF_VAR_DIR=str(tmp_path / "var"),
    )


def test_production_settings_pass_check_deploy_without_warnings(production_env):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_DIR, env={**production_env, "DJANGO_SETTINGS_MODULE": PRODUCTION},
        capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_settings_refuse_to_load_without_required_variable(production_env, missing):
    env = {name: value for name, value in production_env.items() if name != missing}

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO_DIR, env={**env, "DJANGO_SETTINGS_MODULE": PRODUCTION},
        capture_output=True, text=True, timeout=120,
    )

    assert result.returncode != 0
    assert f"Set {missing}" in result.stderr


def test_local_defaults_keep_everything_under_var_dir(clean_env, tmp_path):
    var_dir = tmp_path / "var"

    found = settings_of(
        LOCAL, clean_env(MIXREF_VAR_DIR=str(var_dir)),
        "DEBUG", "DATABASES", "MEDIA_ROOT", "STORAGES", "CELERY_BROKER_URL", "CELERY_BROKER_TRANSPORT_OPTIONS",
    )

    assert found["DEBUG"] is True
    assert found["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert found["DATABASES"]["default"]["NAME"] == str(var_dir / "db.sqlite3")
    assert found["MEDIA_ROOT"] == str(var_dir / "media")
    assert found["STORAGES"]["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert found["CELERY_BROKER_URL"] == "filesystem://"
    options = found["CELERY_BROKER_TRANSPORT_OPTIONS"]
    # Web and worker must read and write the same queue folder.
    assert options["data_folder_in"] == options["data_folder_out"] == str(var_dir / "broker" / "queue")
    assert (var_dir / "broker" / "queue").is_dir()


def test_environment_switches_to_postgres_redis_and_s3(production_env):
    env = {
        **production_env,
        "DATABASE_URL": "postgres://mixref:secret@db.internal:5432/mixref",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "AWS_STORAGE_BUCKET_NAME": "mixref-media",
        "AWS_S3_ENDPOINT_URL": "http://minio:9000",
        "AWS_S3_REGION_NAME": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "key-id",
        "AWS_SECRET_ACCESS_KEY": "key-secret",
    }

    found = settings_of(PRODUCTION, env, "DATABASES", "STORAGES", "CELERY_BROKER_URL", "CSRF_TRUSTED_ORIGINS")

    database = found["DATABASES"]["default"]
    assert (database["ENGINE"], database["HOST"], database["NAME"]) == (
        "django.db.backends.postgresql", "db.internal", "mixref"
    )
    assert found["CELERY_BROKER_URL"] == "redis://redis.internal:6379/0"
    assert found["CSRF_TRUSTED_ORIGINS"] == ["https://mixref.example.org"]
    storage = found["STORAGES"]["default"]
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    expected_options = {
        "bucket_name": "mixref-media", "endpoint_url": "http://minio:9000", "region_name": "eu-west-1",
        "access_key": "key-id", "secret_key": "key-secret", "file_overwrite": False, "addressing_style": "path",
    }
    assert expected_options.items() <= storage["OPTIONS"].items()
    assert found["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"


def test_postgres_driver_is_psycopg_3():
    import psycopg

    assert psycopg.__version__.startswith("3.")


def test_celery_broker_url_wins_over_redis_url(clean_env, tmp_path):
    env = clean_env(MIXREF_VAR_DIR=str(tmp_path), REDIS_URL="redis://a:6379/0", CELERY_BROKER_URL="redis://b:6379/1")

    assert settings_of(LOCAL, env, "CELERY_BROKER_URL") == {"CELERY_BROKER_URL": "redis://b:6379/1"}


def test_s3_storage_built_from_settings_never_overwrites_a_file(clean_env, tmp_path):
    env = clean_env(
        MIXREF_VAR_DIR=str(tmp_path), AWS_STORAGE_BUCKET_NAME="mixref-test", AWS_S3_REGION_NAME="us-east-1",
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
    )
    options = settings_of(LOCAL, env, "STORAGES")["STORAGES"]["default"]["OPTIONS"]
    # An object, which JSON carried here as its repr; test_s3_storage_stores_each_file_with_one_put checks it.
    del options["transfer_config"]
    from storages.backends.s3 import S3Storage

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="mixref-test")
        storage = S3Storage(**options)
        first = storage.save("audio/take.wav", ContentFile(b"first"))
        second = storage.save("audio/take.wav", ContentFile(b"second"))

        assert first != second
        assert storage.open(first).read() == b"first"
        assert storage.open(second).read() == b"second"


def test_studio_fit_budget_defaults_to_the_librarys(clean_env, tmp_path):
    # The settings keep torch out, so they repeat mixing.fit's number; this keeps the two the same.
    from mixing.fit import DEFAULT_TIME_BUDGET_S

    values = settings_of(LOCAL, clean_env(MIXREF_VAR_DIR=str(tmp_path / "var")), "MIXREF_FIT_TIME_BUDGET_S")
    assert values["MIXREF_FIT_TIME_BUDGET_S"] == DEFAULT_TIME_BUDGET_S


READ_TRANSFER_CONFIG = """
import json
from django.core.files.storage import default_storage
print(json.dumps({"multipart_threshold": default_storage.transfer_config.multipart_threshold}))
"""


def test_s3_storage_stores_each_file_with_one_put(clean_env, tmp_path):
    env = clean_env(MIXREF_VAR_DIR=str(tmp_path), AWS_STORAGE_BUCKET_NAME="mixref-test",
                    DJANGO_SETTINGS_MODULE=LOCAL)
    result = subprocess.run([sys.executable, "-c", READ_TRANSFER_CONFIG], cwd=REPO_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    # Above the largest file the app stores (12 min of 24-bit stereo WAV), so no upload is ever multipart.
    largest_bytes = 12 * 60 * 44100 * 2 * 3
    assert json.loads(result.stdout)["multipart_threshold"] > largest_bytes
