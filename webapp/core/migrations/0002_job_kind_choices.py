"""Job.kind holds what a job makes (mix, render) instead of a task name. Studio jobs got their kind
from studio 0002; the loudness jobs of the removed audio files go, with the audio files' table."""
from django.db import migrations, models


def drop_audio_file_jobs(apps, schema_editor):
    apps.get_model("core", "Job").objects.exclude(kind__in=["mix", "render"]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0001_initial"),
        ("studio", "0002_job_kind_into_job"),
    ]

    operations = [
        migrations.RunPython(drop_audio_file_jobs, migrations.RunPython.noop),
        # The removed webapp.projects app left its table behind; no migration of its own can drop it now.
        migrations.RunSQL("DROP TABLE IF EXISTS projects_audiofile", migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(choices=[("mix", "Automatic mix"), ("render", "Render")], max_length=16),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(condition=models.Q(kind__in=["mix", "render"]), name="job_kind_valid"),
        ),
    ]
