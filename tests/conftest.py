"""Fixtures for the whole suite."""
import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]

# Variables that switch our settings; a developer's shell must not leak them into subprocesses.
_SETTINGS_VARIABLE_PREFIXES = ("DJANGO_", "AWS_", "CELERY_", "MIXREF_")
_SETTINGS_VARIABLES = {"DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "PORT"}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Every test stores media in its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def clean_env() -> Callable[..., dict[str, str]]:
    """``clean_env(**overrides)``: this process's environment without settings variables, plus overrides."""

    def build(**overrides: str) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(_SETTINGS_VARIABLE_PREFIXES) and name not in _SETTINGS_VARIABLES
        }
        env.update(overrides)
        return env

    return build
