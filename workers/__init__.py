"""Celery worker: ``celery -A workers worker``. The app is in workers.celery, tasks in workers.tasks."""
from .celery import app

__all__ = ["app"]
