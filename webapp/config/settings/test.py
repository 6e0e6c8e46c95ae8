"""Settings for pytest: fast password hashing and an in-memory broker, so that tests which enqueue
jobs publish nowhere; tests that need a real worker start one with the local settings."""
from .base import *  # noqa: F403

SECRET_KEY = "test-only-secret-key"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
# Static files straight from the app folders (browser tests need them), without collectstatic.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
