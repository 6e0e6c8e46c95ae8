"""The Celery app, configured from Django settings (the CELERY_* names in webapp/config/settings).

The web process only sends messages through it, by task name (webapp.core.services); the worker
(workers.celery) registers the tasks on this same app. So the web app never imports the worker
code, and the two cannot disagree about the broker, the queues or the schedule.
"""
from celery import Celery

app = Celery("mixref")
app.config_from_object("django.conf:settings", namespace="CELERY")

#: The task that runs each kind of job (webapp.core.models.JobKind): services send it by this name,
#: workers.tasks registers it under it.
JOB_TASKS = {"mix": "project_mix", "render": "project_render", "stems": "project_stems"}

#: The sweeper's task (workers.tasks): requeues or fails jobs whose worker is gone (webapp.core.services.jobs_sweep).
JOBS_SWEEP_TASK = "jobs_sweep"
JOBS_SWEEP_INTERVAL_S = 30.0

#: Deletes old temporary files and expired visitors' projects (webapp.studio.housekeeping).
HOUSEKEEPING_TASK = "housekeeping"
HOUSEKEEPING_INTERVAL_S = 60 * 60

#: Queues: ``gpu`` for the work that runs models (mixes and renders), served by the GPU machines (or on
#: the CPU where a worker has no CUDA); ``default`` for light work (housekeeping, the sweeper), so that it
#: never waits behind a 30-minute mix. A task not named here goes to ``default``.
GPU_QUEUE = "gpu"
DEFAULT_QUEUE = "default"
GPU_TASKS = [JOB_TASKS["mix"], JOB_TASKS["render"], JOB_TASKS["stems"]]

app.conf.task_default_queue = DEFAULT_QUEUE
app.conf.task_routes = {name: {"queue": GPU_QUEUE} for name in GPU_TASKS}

#: Every periodic task, in one place; a beat process (or a worker started with -B) sends them.
app.conf.beat_schedule = {
    JOBS_SWEEP_TASK: {"task": JOBS_SWEEP_TASK, "schedule": JOBS_SWEEP_INTERVAL_S},
    HOUSEKEEPING_TASK: {"task": HOUSEKEEPING_TASK, "schedule": HOUSEKEEPING_INTERVAL_S},
}
