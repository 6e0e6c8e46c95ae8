"""Tasks of the studio: each takes a job id and runs a service of webapp.studio.work through
``job_run``, which keeps the Job row in step. Safe to run twice: a finished job is skipped, and a
job that saved its version before returns that version instead of making another.

Django and the mixing code are imported inside the tasks, in the pool child (see workers.celery).
"""
from .celery import app
from .tasks import job_run


@app.task(name="project_mix")
def project_mix(job_id: str) -> None:
    from webapp.studio.work import project_mix_run

    job_run(job_id, lambda report: project_mix_run(job_id=job_id, report=report))


@app.task(name="project_render")
def project_render(job_id: str) -> None:
    from webapp.studio.work import project_render_run

    job_run(job_id, lambda report: project_render_run(job_id=job_id, report=report))


@app.task(name="project_preset_apply")
def project_preset_apply(job_id: str) -> None:
    from webapp.studio.work import project_render_run

    job_run(job_id, lambda report: project_render_run(job_id=job_id, report=report))
