"""The worker's side of the Celery app of webapp.config.celery: the tasks (workers.tasks) and the
pool children's start-up.

Nothing here imports torch: the prefork parent must never initialise CUDA, or its forked pool
children inherit a CUDA context they cannot use. Tasks import heavy modules when they run, in
the child; per-process state such as a loaded model belongs in a ``worker_process_init`` handler.
"""
import importlib
import os
import threading

from celery.signals import worker_process_init, worker_ready

from webapp.config.celery import JOBS_SWEEP_TASK, app

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings.local")
# Celery's Django fixup runs the system checks at start-up, and the URL checks import every view,
# and through them torch, into the prefork parent. manage.py migrate and check run them instead.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")
# Read by the app when it first loads its configuration, which is after these lines.

app.conf.include = ["workers.tasks"]


@worker_process_init.connect
def _import_the_mixing_stack(**_):
    """Start importing torch and the mixing code as soon as a pool child exists.

    Otherwise the first job of every child spends about 3 s on these imports
    while the user watches "queued". A thread, because this signal must return
    within the pool's start-up timeout; a task that needs the module first
    waits on Python's import lock.
    """
    threading.Thread(target=importlib.import_module, args=("webapp.studio.work",), name="import-mixing",
                     daemon=True).start()


@worker_ready.connect
def _sweep_soon(**_):
    """A new worker looks for jobs its dead predecessor left running, once their heartbeat is stale,
    even where no celery beat runs the periodic sweep."""
    from django.conf import settings

    app.send_task(JOBS_SWEEP_TASK, countdown=settings.MIXREF_JOB_STALE_S + 5)


@worker_ready.connect
def _temp_files_delete(**_):
    """A worker killed outright leaves its jobs' temporary folders behind, on a machine of its own that the
    hourly housekeeping (one worker of the ``default`` queue) never sees: each worker clears them as it starts."""
    from django.conf import settings

    from webapp.core.tempfiles import temp_files_delete

    temp_files_delete(max_age_s=settings.CELERY_TASK_TIME_LIMIT)
