"""Housekeeping (webapp.studio.housekeeping) on real rows and files in the test's media folder: expired
visitors' projects go with their files, younger and account-owned ones stay, a second run deletes
nothing, and stale temporary folders go while fresh ones stay."""
import os
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from webapp.core.models import Job
from webapp.core.tempfiles import temp_files_delete
from webapp.studio.housekeeping import housekeeping_run
from webapp.studio.models import MixVersion, Project, ProjectJob, Reference, Stem
from webapp.studio.services import project_files

pytestmark = pytest.mark.django_db(transaction=True)

MAX_AGE_DAYS = 30


def stored(name: str) -> str:
    return default_storage.save(name, ContentFile(b"audio of " + name.encode()))


def project_with_files(name: str, *, visitor_id: str = "visitor-1", owner=None) -> Project:
    """A project with a stem, a reference, a baseline, one version and its job, every file really stored."""
    project = Project.objects.create(name=name, visitor_id="" if owner else visitor_id, owner=owner,
                                     baseline_file=stored("renders/baseline.wav"))
    Stem.objects.create(project=project, position=1, name="Bass", filename="bass.wav", file=stored("stems/bass.wav"),
                        channels=1, duration_s=1.0, sample_rate=44100)
    Reference.objects.create(project=project, filename="ref.wav", file=stored("references/ref.wav"), channels=2,
                             duration_s=1.0, sample_rate=44100, loudness_lufs=-14.0)
    job = Job.objects.create(kind="mix", status="succeeded")
    ProjectJob.objects.create(job=job, project=project, request={"method": "auto"})
    MixVersion.objects.create(project=project, number=1, method="auto", job=job, params={}, auto_params={},
                              wav24_file=stored("renders/mix24.wav"), wav16_file=stored("renders/mix16.wav"),
                              flac_file=stored("renders/mix.flac"))
    return project


def age(project: Project, days: float) -> None:
    """Backdates every row of the project (auto_now only applies on save, not on update)."""
    then = timezone.now() - timedelta(days=days)
    Project.objects.filter(pk=project.pk).update(updated_at=then)
    for model in (Stem, Reference, MixVersion):
        model.objects.filter(project=project).update(updated_at=then)
    Job.objects.filter(studio__project=project).update(updated_at=then)


@pytest.fixture
def projects(settings):
    settings.MIXREF_PROJECT_MAX_AGE_DAYS = MAX_AGE_DAYS
    old, young = project_with_files("Old"), project_with_files("Young")
    owned = project_with_files("Owned", owner=get_user_model().objects.create_user("owner", password="x" * 12))
    touched = project_with_files("Old but re-rendered yesterday")
    age(old, MAX_AGE_DAYS + 1)
    age(young, MAX_AGE_DAYS - 1)
    age(owned, MAX_AGE_DAYS + 100)
    age(touched, MAX_AGE_DAYS + 1)
    Job.objects.filter(studio__project=touched).update(updated_at=timezone.now() - timedelta(days=1))
    return {"old": (old, project_files(old)), "young": (young, project_files(young)),
            "owned": (owned, project_files(owned)), "touched": (touched, project_files(touched))}


def test_visitors_projects_older_than_the_age_go_with_their_files_and_others_stay(projects):
    done = housekeeping_run()

    assert done["projects_deleted"] == 1
    old, old_files = projects["old"]
    assert not Project.objects.filter(pk=old.pk).exists()
    assert not Job.objects.filter(studio__project_id=old.pk).exists()
    assert len(old_files) == 6
    assert [name for name in old_files if default_storage.exists(name)] == []
    for kept in ("young", "owned", "touched"):
        project, files = projects[kept]
        assert Project.objects.filter(pk=project.pk).exists(), kept
        assert all(default_storage.exists(name) for name in files), kept


def test_housekeeping_twice_deletes_nothing_more(projects):
    housekeeping_run()
    left = sorted(Project.objects.values_list("name", flat=True))

    assert housekeeping_run()["projects_deleted"] == 0
    assert sorted(Project.objects.values_list("name", flat=True)) == left == [
        "Old but re-rendered yesterday", "Owned", "Young"]


def test_age_zero_keeps_every_project(projects, settings):
    settings.MIXREF_PROJECT_MAX_AGE_DAYS = 0

    assert housekeeping_run()["projects_deleted"] == 0
    assert Project.objects.count() == 4


def test_management_command_runs_the_same_housekeeping(projects, capsys):
    call_command("housekeeping")

    assert "deleted 1 expired projects" in capsys.readouterr().out
    assert not Project.objects.filter(pk=projects["old"][0].pk).exists()
    assert Project.objects.count() == 3


def test_stale_temporary_entries_of_ours_go_and_fresh_or_foreign_ones_stay(tmp_path):
    stale_dir, stale_file = tmp_path / "mixref-job-dead", tmp_path / "mixref-decode-dead.wav"
    fresh_dir, foreign = tmp_path / "mixref-version-running", tmp_path / "someone-elses-old-file"
    stale_dir.mkdir()
    (stale_dir / "0.wav").write_bytes(b"x")
    stale_file.write_bytes(b"x")
    fresh_dir.mkdir()
    foreign.write_bytes(b"x")
    hour_ago_s = time.time() - 3600
    for path in (stale_dir, stale_file, foreign):
        os.utime(path, (hour_ago_s, hour_ago_s))

    assert temp_files_delete(max_age_s=1800, folder=tmp_path) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mixref-version-running", "someone-elses-old-file"]
    assert temp_files_delete(max_age_s=1800, folder=tmp_path) == 0
