"""A project holds stems, one reference and numbered mix versions, and belongs to an account or to an
anonymous visitor (a random id kept in the session, RELIABILITY.md). Every file lives in the default
storage under a fresh uuid key, so keys never collide and never carry a user's file name."""
import uuid
from pathlib import PurePath

from django.conf import settings
from django.db import models

from mixing.tone.family import FAMILIES
from webapp.core.models import BaseModel, Job


def _uuid_key(folder: str, filename: str) -> str:
    return f"{folder}/{uuid.uuid4().hex}{PurePath(filename).suffix.lower()}"


def stem_upload_to(instance: "Stem", filename: str) -> str:
    return _uuid_key("stems", filename)


def reference_upload_to(instance: "Reference", filename: str) -> str:
    return _uuid_key("references", filename)


def render_upload_to(instance: models.Model, filename: str) -> str:
    return _uuid_key("renders", filename)


class Project(BaseModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="studio_projects"
    )
    visitor_id = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="The anonymous visitor's id from the session."
    )
    # The latest job; the API shows it as active_job while it is queued or running. One at a time per project.
    last_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The equal-loudness mix of the stems at the reference's loudness, for the player and the analysis;
    # remade when the stems or the reference change (baseline_signature names what it was made from).
    baseline_file = models.FileField(upload_to=render_upload_to, max_length=200, blank=True)
    baseline_loudness_lufs = models.FloatField(null=True, blank=True)
    baseline_signature = models.CharField(max_length=64, blank=True)
    delete_reference_audio = models.BooleanField(
        default=True, help_text="Delete the reference's audio once a mix has analysed it, keeping only its features.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(owner__isnull=False) | ~models.Q(visitor_id=""),
                name="studio_project_has_owner_or_visitor",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Stem(BaseModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="stems")
    position = models.PositiveIntegerField(help_text="Order of the tracks; gaps are left by deleted stems.")
    name = models.CharField(max_length=120)
    filename = models.CharField(max_length=255, help_text="The file name the user uploaded.")
    file = models.FileField(upload_to=stem_upload_to, max_length=200)
    channels = models.PositiveSmallIntegerField()
    duration_s = models.FloatField()
    sample_rate = models.PositiveIntegerField(help_text="The file's own sample rate in Hz, before resampling.")
    silent = models.BooleanField(default=False, help_text="Peak below -90 dBFS: kept, and left out of every mix.")
    family = models.CharField(
        max_length=16, blank=True, choices=[(family, family) for family in FAMILIES],
        help_text="Instrument family (mixing.tone.family): which neural tone model the track uses, and its colour. "
                  "From the name at upload, the user's choice, else the worker's guess from the sound; blank until "
                  "known.",
    )

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["project", "position"], name="studio_stem_position_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Reference(BaseModel):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="reference")
    filename = models.CharField(max_length=255)
    file = models.FileField(upload_to=reference_upload_to, max_length=200, blank=True,
                            help_text="Blank once deleted after analysis (the project's delete_reference_audio).")
    features_file = models.FileField(
        upload_to=reference_upload_to, max_length=200, blank=True,
        help_text="What re-renders and analyses read of the reference (MixSession.reference_features), torch.save'd.",
    )
    comparison_charts = models.JSONField(default=dict, blank=True, help_text="The reference's chart data, kept.")
    channels = models.PositiveSmallIntegerField()
    duration_s = models.FloatField()
    sample_rate = models.PositiveIntegerField()
    loudness_lufs = models.FloatField()

    def __str__(self) -> str:
        return self.filename


class MixVersion(BaseModel):
    """One rendered mix. Every mix, re-render and applied preset makes a new one; none is ever changed."""

    class Method(models.TextChoices):
        AUTO = "auto", "Automatic mix"
        MANUAL = "manual", "Manual changes"
        PRESET = "preset", "From a preset"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    method = models.CharField(max_length=16, choices=Method.choices)
    job = models.OneToOneField(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="studio_version",
        help_text="The job that made it: a repeated job finds its version instead of making another.",
    )
    params = models.JSONField(help_text="The preset rendered, tracks named and in stem order.")
    auto_params = models.JSONField(help_text="The automatic mix's preset that these parameters started from.")
    neutral_params = models.JSONField(
        default=dict, blank=True,
        help_text="The reference-free start of that automatic mix (mixing.strength's 0 %); empty before it was kept.",
    )
    strengths = models.JSONField(
        default=dict, blank=True, help_text="The match strength per dimension (0..1) of a render that set one.",
    )
    muted = models.JSONField(default=list, blank=True, help_text="Ids of muted stems.")
    solo = models.JSONField(default=list, blank=True, help_text="Ids of soloed stems.")
    wav24_file = models.FileField(upload_to=render_upload_to, max_length=200)
    wav16_file = models.FileField(upload_to=render_upload_to, max_length=200)
    flac_file = models.FileField(upload_to=render_upload_to, max_length=200)
    stems_zip = models.FileField(
        upload_to=render_upload_to, max_length=200, blank=True,
        help_text="Each track after its strip, before the master bus, as one ZIP; made on request (a stems job).",
    )
    preview_zip = models.FileField(
        upload_to=render_upload_to, max_length=200, blank=True,
        help_text="The live preview's per-track (or per-group) Ogg files and manifest (mixing.preview); on request.",
    )
    loudness_lufs = models.FloatField(null=True, blank=True)
    true_peak_dbtp = models.FloatField(null=True, blank=True)
    af_loss = models.FloatField(null=True, blank=True)
    analysis = models.JSONField(default=dict, blank=True)
    chart_data = models.JSONField(default=dict, blank=True, help_text="Spectrograms and spectra for charts.py.")

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="studio_version_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.number}"

    @property
    def files(self) -> list[models.fields.files.FieldFile]:
        made = [file for file in (self.stems_zip, self.preview_zip) if file]
        return [self.wav24_file, self.wav16_file, self.flac_file, *made]


class ProjectJob(models.Model):
    """For which project a Job runs and what it was asked to do (its version: ``job.studio_version``)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, primary_key=True, related_name="studio")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    request = models.JSONField(
        default=dict, blank=True,
        help_text="The validated request: the version's method, and for a render its params, muted, solo...",
    )

    def __str__(self) -> str:
        return f"{self.job.kind} of {self.project_id}"
