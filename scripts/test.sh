#!/usr/bin/env bash
# Installs the test dependencies on first run, then lints the code and runs the whole test suite.
# Arguments go to pytest, e.g. ./scripts/test.sh tests/integration -k loudness
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_debian_packages ffmpeg redis-server chromium fluidsynth fluid-soundfont-gm postgresql
ensure_venv requirements-dev.txt requirements.txt

# Lint first (rules in pyproject.toml): a finding fails the run in a second, before the slow tests.
"$VENV/bin/ruff" check .
# Then the import rules between mixing, webapp and workers ([tool.importlinter]).
"$VENV/bin/lint-imports"
exec "$VENV/bin/python" -m pytest "$@"
