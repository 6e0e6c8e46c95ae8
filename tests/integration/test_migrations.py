"""Migrations keep what users have: studio jobs made before Job.kind held the kinds keep working."""
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("core", "0001_initial"), ("studio", "0001_initial")]
AFTER = [("core", "0002_job_kind_choices"), ("studio", "0002_job_kind_into_job")]


def migrated(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def test_studio_jobs_get_their_kind_and_the_versions_method_and_audio_file_jobs_go():
    apps = migrated(BEFORE)
    Job, ProjectJob = apps.get_model("core", "Job"), apps.get_model("studio", "ProjectJob")
    project = apps.get_model("studio", "Project").objects.create(name="Old Song", visitor_id="v")
    made = {}
    for task, kind, request in [("project_mix", "mix", {"method": "auto"}),
                                ("project_render", "render", {"params": {}, "muted": []}),
                                ("project_preset_apply", "preset", {"params": {}})]:
        job = Job.objects.create(kind=task)
        ProjectJob.objects.create(job=job, project=project, kind=kind, request=request)
        made[kind] = job.pk
    Job.objects.create(kind="audio_file_measure_loudness")

    try:
        apps = migrated(AFTER)
        Job, ProjectJob = apps.get_model("core", "Job"), apps.get_model("studio", "ProjectJob")

        kinds = {pk: Job.objects.get(pk=pk).kind for pk in made.values()}
        assert kinds == {made["mix"]: "mix", made["render"]: "render", made["preset"]: "render"}
        methods = {pk: ProjectJob.objects.get(pk=pk).request["method"] for pk in made.values()}
        assert methods == {made["mix"]: "auto", made["render"]: "manual", made["preset"]: "preset"}
        assert ProjectJob.objects.get(pk=made["render"]).request["muted"] == []
        assert Job.objects.count() == 3
    finally:
        call_command("migrate", verbosity=0)
