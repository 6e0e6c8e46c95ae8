"""The studio's job kinds move into Job.kind: a mix stays a mix, and a re-render or an applied preset
becomes a render job whose request names its version's method (manual or preset)."""
from django.db import migrations, models

# The version's method of each old kind; a mix's request has held its method ("auto") all along.
_RENDER_METHODS = {"render": "manual", "preset": "preset"}
# The task names Job.kind held before, for going back.
_OLD_TASKS = {"mix": "project_mix", "render": "project_render", "preset": "project_preset_apply"}


def kinds_into_jobs(apps, schema_editor):
    ProjectJob = apps.get_model("studio", "ProjectJob")
    for project_job in ProjectJob.objects.select_related("job").iterator():
        job = project_job.job
        if project_job.kind in _RENDER_METHODS:
            project_job.request = {**project_job.request, "method": _RENDER_METHODS[project_job.kind]}
            project_job.save(update_fields=["request"])
            job.kind = "render"
        else:
            job.kind = "mix"
        job.save(update_fields=["kind"])


def kinds_back(apps, schema_editor):
    ProjectJob = apps.get_model("studio", "ProjectJob")
    for project_job in ProjectJob.objects.select_related("job").iterator():
        job = project_job.job
        if job.kind == "render":
            project_job.kind = "preset" if project_job.request.get("method") == "preset" else "render"
        else:
            project_job.kind = "mix"
        project_job.save(update_fields=["kind"])
        job.kind = _OLD_TASKS[project_job.kind]
        job.save(update_fields=["kind"])


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0001_initial"),
        ("studio", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(kinds_into_jobs, kinds_back),
        migrations.RemoveField(
            model_name="projectjob",
            name="kind",
        ),
        migrations.AlterField(
            model_name="projectjob",
            name="request",
            field=models.JSONField(
                blank=True, default=dict,
                help_text="The validated request: the version's method, and for a render its params, muted, solo...",
            ),
        ),
    ]
