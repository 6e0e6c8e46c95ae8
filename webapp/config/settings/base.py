"""Every setting lives here, switched by environment variables; local, production and test only
change defaults. The embedded defaults (SQLite, media in var/media, a filesystem broker in
var/broker) need no server; DATABASE_URL, CELERY_BROKER_URL and AWS_STORAGE_BUCKET_NAME switch
to PostgreSQL, Redis and S3. README.md lists every variable.
"""
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[3]


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    try:
        return int(value) if value else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Run-time state of the embedded setup: database, media, broker queue, collected static files.
VAR_DIR = Path(env_str("MIXREF_VAR_DIR") or BASE_DIR / "var").resolve()

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles so that runserver also serves static files through WhiteNoise.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "webapp.core",
    "webapp.studio",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything that could read the body (sessions, CSRF, WhiteNoise never do; views do).
    "webapp.core.middleware.RequestSizeMiddleware",
    "webapp.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webapp.core.middleware.ApplicationErrorMiddleware",
]

# Scripts, styles, media and requests from this origin only. Plotly inserts <style> elements, hence
# 'unsafe-inline' for styles (never for scripts); blob: for players that fetch a file whole
# (static/js/studio/player.js) and for Plotly's image export.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

ROOT_URLCONF = "webapp.config.urls"
WSGI_APPLICATION = "webapp.config.wsgi.application"
CSRF_FAILURE_VIEW = "webapp.core.views.csrf_failure"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite creates the file but not its folder (var/ on a fresh clone).
    if DATABASES["default"]["NAME"] not in {"", ":memory:"}:
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web server and the worker write to the same file: WAL lets readers run beside a writer,
    # IMMEDIATE takes the write lock up front so that a busy database waits instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.min.js from the installed plotly package (no CDN).
    "webapp.studio.staticfiles.PlotlyFinder",
]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")

# Storage: the local folder MEDIA_ROOT unless a bucket is named, then S3 (or MinIO through
# AWS_S3_ENDPOINT_URL). Keys are uuids and overwriting is off, so a retried job never replaces
# another job's file.
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": AWS_S3_ENDPOINT_URL or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            # MinIO and most S3 look-alikes only answer path-style requests.
            "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE") or ("path" if AWS_S3_ENDPOINT_URL else None),
            "signature_version": "s3v4",
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE_S", 3600),
        },
    }
    # Each stored file is one PUT (all or nothing, RELIABILITY.md), never a multipart upload whose
    # parts a killed worker would leave behind: single PUTs take up to 5 GiB, and the largest file
    # (12 min of 24-bit stereo WAV) is about 190 MB.
    from boto3.s3.transfer import TransferConfig

    STORAGES["default"]["OPTIONS"]["transfer_config"] = TransferConfig(multipart_threshold=5 * 1024**3)
    # Left out, boto3 falls back to its own chain (instance role, ~/.aws).
    if env_str("AWS_ACCESS_KEY_ID"):
        STORAGES["default"]["OPTIONS"]["access_key"] = env_str("AWS_ACCESS_KEY_ID")
        STORAGES["default"]["OPTIONS"]["secret_key"] = env_str("AWS_SECRET_ACCESS_KEY")

# Uploads: Django caps neither the total size of files nor answers JSON when it refuses them, so
# our own handler (webapp.core.uploads) stops a request past these limits before storing more.
MIXREF_UPLOAD_MAX_BYTES = env_int("MIXREF_UPLOAD_MAX_BYTES", 512 * 1024 * 1024)
MIXREF_UPLOAD_MAX_FILES = env_int("MIXREF_UPLOAD_MAX_FILES", 64)
# Bytes one request may unpack from ZIPs into its temporary folder; checked from each ZIP's directory
# before unpacking, and counted again as the bytes come out (a small ZIP can unpack to gigabytes).
MIXREF_UPLOAD_MAX_UNPACKED_BYTES = env_int("MIXREF_UPLOAD_MAX_UNPACKED_BYTES", 1024 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = MIXREF_UPLOAD_MAX_FILES + 1
FILE_UPLOAD_HANDLERS = [
    "webapp.core.uploads.QuotaUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Audio longer than this is refused before it is decoded (a small FLAC can decode to gigabytes).
MIXREF_AUDIO_MAX_DURATION_S = env_int("MIXREF_AUDIO_MAX_DURATION_S", 12 * 60)

# Jobs: a job that killed its worker this many times fails with a reason instead of looping.
MIXREF_JOB_MAX_ATTEMPTS = env_int("MIXREF_JOB_MAX_ATTEMPTS", 3)
# A running job touches its row this often; one silent for MIXREF_JOB_STALE_S has lost its worker, and
# the sweeper (webapp.core.services.jobs_sweep, every 30 s under celery beat, and once soon after a
# worker starts) requeues it. A job queued for MIXREF_JOB_RESEND_S is sent again (its message may be
# lost), and fails once queued for MIXREF_JOB_QUEUED_MAX_S.
MIXREF_JOB_HEARTBEAT_S = env_int("MIXREF_JOB_HEARTBEAT_S", 10)
MIXREF_JOB_STALE_S = env_int("MIXREF_JOB_STALE_S", 60)
MIXREF_JOB_RESEND_S = env_int("MIXREF_JOB_RESEND_S", 15 * 60)
MIXREF_JOB_QUEUED_MAX_S = env_int("MIXREF_JOB_QUEUED_MAX_S", 6 * 60 * 60)

# Studio: how long the automatic mix may fit its parameters (whichever limit comes first), and how
# many bytes of projects' decoded stems and renderers each worker process keeps for fast re-renders.
# mixing.fit.DEFAULT_TIME_BUDGET_S (not imported: settings stay free of torch).
MIXREF_FIT_TIME_BUDGET_S = float(env_str("MIXREF_FIT_TIME_BUDGET_S") or 20.0)
MIXREF_FIT_ITERATIONS = env_int("MIXREF_FIT_ITERATIONS", 150)
MIXREF_RENDER_CACHE_MAX_BYTES = env_int("MIXREF_RENDER_CACHE_MAX_BYTES", 4 * 1024**3)

# Housekeeping (webapp.studio.housekeeping, hourly and `manage.py housekeeping`): visitors' projects
# untouched for this many days are deleted with their files; 0 keeps them for ever.
MIXREF_PROJECT_MAX_AGE_DAYS = env_int("MIXREF_PROJECT_MAX_AGE_DAYS", 30)

# Celery. Job state lives in the database, so results are ignored and no result backend is needed.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
# With acks_late alone a killed pool child loses its job; rejecting requeues it at once.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("MIXREF_TASK_SOFT_TIME_LIMIT_S", 30 * 60)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = False
# Where beat (start.sh and compose run one) remembers when it last sent each periodic task.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than the hard limit, or Redis hands a running job to a second worker.
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 5 * 60,
    # kombu sweeps unacked messages of a dead worker every ~100 s by default.
    "unacked_restore_interval": 2,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_DIR = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        # Producer and consumer share one queue folder, so web and worker processes meet there.
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.25,
    }
    # kombu does not create the queue folder itself.
    (BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL") or "INFO"},
}
