"""Housekeeping: deletes what nobody will use again. Runs hourly (the ``housekeeping`` task on the
``default`` queue, webapp.config.celery) and on demand (``manage.py housekeeping``); running it twice
deletes nothing more.

- Visitors' projects (no account) untouched for ``MIXREF_PROJECT_MAX_AGE_DAYS``, with their rows, jobs
  and stored files (project_delete). Accounts' projects are kept.
- Temporary folders and files that a killed process left in this machine's temporary folder. Each
  machine has its own, so every worker also runs this part when it starts (workers.celery), and
  only entries older than the hard time limit go: no job that could still use them runs that long.
"""
import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from webapp.core.tempfiles import temp_files_delete

from .models import MixVersion, Project, ProjectJob, Reference, Stem
from .services import project_delete

logger = logging.getLogger(__name__)

def projects_expired(*, max_age_days: int) -> list[Project]:
    """Visitors' projects in which nothing (the project, a stem, the reference, a version, a job) has
    changed for ``max_age_days``; none when it is 0."""
    if max_age_days <= 0:
        return []
    cutoff = timezone.now() - timedelta(days=max_age_days)

    def changed_since(model) -> Exists:
        return Exists(model.objects.filter(project=OuterRef("pk"), updated_at__gte=cutoff))

    recent_job = Exists(ProjectJob.objects.filter(project=OuterRef("pk"), job__updated_at__gte=cutoff))
    return list(
        Project.objects.filter(owner__isnull=True, updated_at__lt=cutoff)
        .exclude(Q(changed_since(Stem)) | Q(changed_since(Reference)) | Q(changed_since(MixVersion)) | Q(recent_job))
    )


def housekeeping_run() -> dict:
    """Deletes expired visitors' projects and stale temporary files; returns how many of each."""
    projects = projects_expired(max_age_days=settings.MIXREF_PROJECT_MAX_AGE_DAYS)
    for project in projects:
        project_delete(project=project)
    temp_entries = temp_files_delete(max_age_s=settings.CELERY_TASK_TIME_LIMIT)
    logger.info("housekeeping: deleted %d expired projects and %d temporary entries", len(projects), temp_entries)
    return {"projects_deleted": len(projects), "temp_entries_deleted": temp_entries}
