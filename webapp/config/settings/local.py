"""Settings for one machine (./scripts/start.sh): debug on, a development secret key, localhost only."""
from .base import *  # noqa: F403
from .base import env_bool, env_list, env_str

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or "django-insecure-local-development-key-do-not-deploy"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
# WhiteNoise serves static files straight from the app folders: no collectstatic on one machine.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
