"""The parts README.md says are real when configured, over their real protocols: PostgreSQL
(DATABASE_URL; a throwaway cluster from Debian's packages) and S3 storage (AWS_STORAGE_BUCKET_NAME;
moto's S3 server, through django-storages and boto3). Servers come from services.py."""
import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO_DIR

from .services import postgres_server, postgres_url, s3_server  # noqa: F401 (fixtures)
from .studio_helpers import reference_wav, session_stems
from .test_round_trip import render_through_http, start_app  # noqa: F401 (fixture)
from .test_studio_worker import FAST_FIT, Studio

# Runs in a child process so that this process's test database stays as it is: migrations from
# nothing, then the studio API through Django's test client, all on the database in DATABASE_URL.
STUDIO_ON_DATABASE = """
import json, os
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment

call_command("migrate", interactive=False, verbosity=0)
setup_test_environment()
client = Client()
project = client.post("/api/projects/", {"name": "Postgres Song"}, content_type="application/json").json()
stems = [SimpleUploadedFile(path.rsplit("/", 1)[-1], open(path, "rb").read())
         for path in os.environ["STEM_PATHS"].split(":")]
added = client.post(f"/api/projects/{project['id']}/stems/", {"files": stems})
renamed = client.patch(f"/api/projects/{project['id']}/", {"name": "Renamed"}, content_type="application/json")
print(json.dumps({
    "vendor": connection.vendor,
    "project_id": project["id"],
    "stems_status": added.status_code,
    "stems": [[stem["name"], stem["position"]] for stem in added.json()["stems"]],
    "renamed_status": renamed.status_code,
    "listed": [p["name"] for p in client.get("/api/projects/").json()["projects"]],
}))
"""


def rows(database_url: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(database_url) as connection:
        return connection.execute(query, params).fetchall()


def test_migrations_and_studio_api_run_on_postgresql(postgres_url, clean_env, tmp_path):
    stem_paths = []
    for name, content in list(session_stems(duration_s=1.5).items())[:2]:
        stem_paths.append(tmp_path / name)
        stem_paths[-1].write_bytes(content)
    env = clean_env(DJANGO_SETTINGS_MODULE="webapp.config.settings.test", DATABASE_URL=postgres_url,
                    MIXREF_VAR_DIR=str(tmp_path / "var"), STEM_PATHS=":".join(map(str, stem_paths)))

    child = subprocess.run([sys.executable, "manage.py", "shell", "-c", STUDIO_ON_DATABASE], cwd=REPO_DIR, env=env,
                           capture_output=True, text=True, timeout=120)

    assert child.returncode == 0, child.stderr[-3000:]
    answer = json.loads(child.stdout.strip().splitlines()[-1])
    assert answer["vendor"] == "postgresql"
    assert (answer["stems_status"], answer["renamed_status"]) == (201, 200)
    assert answer["stems"] == [["Bass", 1], ["Keys", 2]]
    assert answer["listed"] == ["Renamed"]
    # The rows are in that PostgreSQL database, not in a SQLite file beside it.
    assert rows(postgres_url, "SELECT name FROM studio_project WHERE id = %s", answer["project_id"]) == [("Renamed",)]
    assert rows(postgres_url, "SELECT name, position FROM studio_stem ORDER BY position") == [("Bass", 1), ("Keys", 2)]
    assert rows(postgres_url, "SELECT count(*) FROM django_migrations WHERE app = 'studio'")[0][0] > 0
    assert not (tmp_path / "var" / "db.sqlite3").exists()


@pytest.mark.slow
def test_app_and_worker_render_on_postgresql(postgres_url, start_app, tmp_path):
    app = start_app(DATABASE_URL=postgres_url)

    job = render_through_http(app)

    assert (job["status"], job["version"]) == ("succeeded", 1), f"{job}\n{app.output}"
    # Web and worker met in PostgreSQL: the worker's result is in its job row there.
    [(status, result)] = rows(postgres_url, "SELECT status, result FROM core_job WHERE id = %s", job["id"])
    assert (status, result) == ("succeeded", {"version": 1})
    assert not (tmp_path / "var" / "db.sqlite3").exists()


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


@pytest.mark.slow
def test_studio_keeps_every_file_in_s3_serves_it_and_deletes_it_with_the_project(
    s3_server, start_app, tmp_path
):
    app = start_app(**FAST_FIT, **s3_server.env)
    studio = Studio(app.url)
    project = studio.call("POST", "/api/projects/", 201, json={"name": "Bucket Song"}).json()
    base = f"/api/projects/{project['id']}/"
    stems = dict(list(session_stems(duration_s=4.0).items())[:2])
    added = studio.call("POST", base + "stems/", 201,
                        files=[("files", (name, content, "audio/wav")) for name, content in stems.items()]).json()
    assert added["rejected"] == [], added
    studio.call("PUT", base + "reference/", 201, files={"file": ("Reference.wav", reference_wav(4.0), "audio/wav")})

    uploaded = s3_server.keys()
    assert [key.split("/")[0] for key in uploaded] == ["references", "stems", "stems"], uploaded
    assert sorted(s3_server.read(key) for key in uploaded if key.startswith("stems/")) == sorted(stems.values())

    mix_job = studio.job_finished(studio.call("POST", base + "mix/", 202, json={"method": "auto"}).json(), app)

    assert (mix_job["status"], mix_job["version"]) == ("succeeded", 1), f"{mix_job}\n{app.output}"
    written = sorted(set(s3_server.keys()) - set(uploaded))
    # Three formats of the mix and the equal-loudness baseline, all from the worker, and the reference's features
    # in place of its audio, which the worker deleted (the project's default).
    assert [key.split("/")[0] for key in written] == ["references"] + ["renders"] * 4, written
    stored = set(s3_server.keys())
    assert not any(key in stored for key in uploaded if key.startswith("references/"))
    version = studio.call("GET", base + "versions/1/", 200).json()
    downloaded = studio.call("GET", version["downloads"]["wav24"], 200)
    assert downloaded.headers["Content-Disposition"].startswith("attachment")
    assert downloaded.content[:4] == b"RIFF"
    assert downloaded.content in [s3_server.read(key) for key in written]
    played = studio.call("GET", version["audio_url"], 200).content
    part = studio.call("GET", version["audio_url"], 206, headers={"Range": "bytes=44-1043"})
    assert part.content == played[44:1044]
    assert files_under(tmp_path / "var" / "media") == []

    studio.call("DELETE", base, 204)

    assert s3_server.keys() == []
    studio.call("GET", base, 404)
