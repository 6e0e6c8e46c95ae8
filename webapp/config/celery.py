"""The Celery app, configured from Django settings (the CELERY_* names in webapp/config/settings).

The web process only sends messages through it, by task name (webapp.core.services); the worker
(workers.celery) registers the tasks on this same app. So the web app never imports the worker
code, and the two cannot disagree about the broker or its options.
"""
from celery import Celery

app = Celery("mixref")
app.config_from_object("django.conf:settings", namespace="CELERY")

#: The task that runs each kind of job (webapp.core.models.JobKind): services send it by this name,
#: workers.tasks registers it under it.
JOB_TASKS = {"mix": "project_mix", "render": "project_render"}

#: The sweeper's task (workers.tasks): requeues or fails jobs whose worker is gone (webapp.core.services.jobs_sweep).
JOBS_SWEEP_TASK = "jobs_sweep"
JOBS_SWEEP_INTERVAL_S = 30.0

app.conf.beat_schedule = {
    "jobs-sweep": {"task": JOBS_SWEEP_TASK, "schedule": JOBS_SWEEP_INTERVAL_S},
}
