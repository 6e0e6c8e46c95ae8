"""``manage.py housekeeping``: the hourly housekeeping task, now (webapp.studio.housekeeping)."""
from django.core.management.base import BaseCommand

from webapp.studio.housekeeping import housekeeping_run


class Command(BaseCommand):
    help = "Deletes visitors' projects older than MIXREF_PROJECT_MAX_AGE_DAYS and stale temporary files."

    def handle(self, *args, **options):
        done = housekeeping_run()
        self.stdout.write(
            f"deleted {done['projects_deleted']} expired projects and "
            f"{done['temp_entries_deleted']} temporary entries"
        )
