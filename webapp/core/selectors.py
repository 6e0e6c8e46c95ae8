"""Reads of Job rows."""
from .errors import ApplicationError
from .models import Job


def job_get(*, job_id) -> Job:
    try:
        return Job.objects.get(pk=job_id)
    except Job.DoesNotExist:
        raise ApplicationError("No such job.", code="not_found", status=404) from None


def job_as_dict(job: Job) -> dict:
    """The JSON form of a job that pollers receive."""
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "stage": job.stage,
        "error": job.error,
        "attempts": job.attempts,
        "result": job.result,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "url": f"/api/jobs/{job.id}/",
    }
