# Shared by start.sh and test.sh (sourced, not run): Debian packages, the virtualenv and the project in it.
# Both steps do nothing when everything is already in place, so the scripts can be re-run freely.

VENV=.venv
PYTHON_VERSION=3.11

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

debian_package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs the named Debian packages that are missing; apt-get update only runs when one is.
ensure_debian_packages() {
    local missing=() package
    for package in "$@"; do
        debian_package_installed "$package" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        log "missing system packages ${missing[*]} and no apt-get to install them; install them yourself"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

find_python() {
    local candidate
    for candidate in "python$PYTHON_VERSION" python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))"; then
            echo "$candidate"
            return 0
        fi
    done
    log "Python $PYTHON_VERSION is needed (apt-get install python3.11 on Debian 12)"
    return 1
}

stamp_path() { echo "$VENV/.installed-$(basename "$1" .txt).sha256"; }

# The hash a stamp holds: requirements.txt plus the file (requirements-dev.txt includes the former).
requirements_hash() { cat requirements.txt "$1" | sha256sum | cut -d' ' -f1; }

# Creates .venv if needed and installs the requirements file $1 unless its stamp shows that exactly
# this file was installed before. Files named after it are satisfied by the same install
# (requirements-dev.txt pulls in requirements.txt) and are stamped too. pip finds the local CPU
# torch wheel through pip's own configuration (find-links), so nothing here names an index.
# Then installs the project itself (ensure_project).
ensure_venv() {
    local python requirements=$1 file
    if [ ! -x "$VENV/bin/python" ]; then
        python=$(find_python)
        if ! "$python" -c 'import ensurepip' 2>/dev/null; then
            ensure_debian_packages "python$PYTHON_VERSION-venv"
        fi
        log "creating $VENV with $python"
        "$python" -m venv "$VENV"
    fi
    if [ ! -f "$(stamp_path "$requirements")" ] ||
        [ "$(cat "$(stamp_path "$requirements")")" != "$(requirements_hash "$requirements")" ]; then
        log "installing $requirements into $VENV"
        "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r "$requirements"
        for file in "$@"; do
            requirements_hash "$file" >"$(stamp_path "$file")"
        done
    fi
    ensure_project
}

# The project's metadata comes from pyproject.toml and requirements.txt (its dependencies).
project_hash() { cat pyproject.toml requirements.txt | sha256sum | cut -d' ' -f1; }

# Installs this checkout into .venv in editable mode (the `mixref` command, imports from any folder), unless
# its stamp shows the same metadata installed before. --no-deps: ensure_venv installed the pinned set.
ensure_project() {
    local stamp="$VENV/.installed-project.sha256"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(project_hash)" ] && [ -x "$VENV/bin/mixref" ]; then
        return 0
    fi
    log "installing mixref (editable) into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet --no-deps -e .
    project_hash >"$stamp"
}
