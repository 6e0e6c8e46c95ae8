#!/usr/bin/env bash
# Installs Mixref on first run, then runs the web server and a Celery worker until Ctrl-C.
# Embedded defaults: SQLite, media and a filesystem broker under var/; see README.md to change them.
# MIXREF_SKIP_INSTALL=1 skips the install step (tests use it to start the app quickly).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [ "${MIXREF_SKIP_INSTALL:-0}" != 1 ]; then
    ensure_debian_packages ffmpeg
    ensure_venv requirements.txt
fi

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-webapp.config.settings.local}"
log "applying database migrations"
"$VENV/bin/python" manage.py migrate --noinput
exec "$VENV/bin/python" scripts/serve.py
