import uuid

from django.db import models


class BaseModel(models.Model):
    """Creation and update times for every table."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class JobKind(models.TextChoices):
    """What a job makes; each kind has one task (webapp.config.celery.JOB_TASKS)."""

    MIX = "mix", "Automatic mix"
    RENDER = "render", "Render"
    STEMS = "stems", "Processed stems"


class Job(BaseModel):
    """The state of one background job, kept by the worker (webapp.core.services) and read by pollers.

    The broker only carries ``(job_id, ...)``; everything a user sees lives in this row, so a lost
    or repeated message can neither hide a job nor run it twice to a different end.
    """

    Kind = JobKind
    Status = JobStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=JobKind.choices)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="Fraction done, 0 to 1.")
    stage = models.CharField(max_length=200, blank=True, help_text="What the job is doing now, for people.")
    error = models.TextField(blank=True, help_text="Why the job failed, shown to the user as it is.")
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker has started the job.")
    result = models.JSONField(default=dict, blank=True)
    stage_s = models.JSONField(
        default=dict, blank=True,
        help_text="Seconds spent in each stage so far, by stage name (the stage text up to its first ': ').",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0) & models.Q(progress__lte=1.0),
                name="job_progress_between_0_and_1",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=JobStatus.values),
                name="job_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=JobKind.values),
                name="job_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status}, {self.progress:.0%})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}
