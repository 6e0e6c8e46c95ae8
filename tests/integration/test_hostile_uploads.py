"""Hostile uploads through the API (tests/hostile_files.py): each malformed file is refused by name and
reason within 2 s of CPU, nothing is written outside the media root, the project's earlier stems,
reference and version survive, and the web process's memory barely grows. Files are really decoded,
in child processes."""
import hashlib
import resource
import tempfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.hostile_files import CORRUPT_WAV, Hostile, hostile_zips, silent_files, single_files, zip_of
from webapp.studio.models import MixVersion, Reference, Stem

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    ready_project,
    reference_upload,
    rendered_project,
    stems_upload,
)

pytestmark = pytest.mark.django_db

CPU_PER_FILE_S = 2.0
MEMORY_GROWTH_BYTES = 100 * 1024**2
# Small caps, so that the bombs stay cheap to make; production defaults are far larger.
UNPACKED_CAP_BYTES = 4 * 1024**2
FILES_PER_REQUEST = 32


def _cpu_s() -> float:
    """CPU of this process and of its finished children (the decoders), user + system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def upload_temp_dir(tmp_path, monkeypatch) -> Path:
    """The temporary folder uploads are unpacked and decoded in, watched by the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _batches(files: tuple[Hostile, ...], size: int) -> list[tuple[Hostile, ...]]:
    return [files[start:start + size] for start in range(0, len(files), size)]


def _send(client, project_id: str, batch: tuple[Hostile, ...]):
    uploads = [SimpleUploadedFile(item.name, item.content) for item in batch]
    return client.post(f"/api/projects/{project_id}/stems/", {"files": uploads})


def test_the_corpus_has_over_200_malformed_files():
    assert len(single_files()) + len(hostile_zips(max_unpacked_bytes=UNPACKED_CAP_BYTES)) >= 200


def test_every_malformed_file_is_refused_by_name_and_reason_and_nothing_else_changes(
    client, rendered_project, settings, media_root, upload_temp_dir, tmp_path
):
    settings.MIXREF_UPLOAD_MAX_UNPACKED_BYTES = UNPACKED_CAP_BYTES
    project_id = rendered_project["id"]
    media_before = _snapshot(media_root)
    stems_before = list(Stem.objects.order_by("position").values_list("id", "name", "file"))
    version_before = MixVersion.objects.values_list("id", "params", "wav24_file").get()
    reference_before = Reference.objects.values_list("filename", "file").get()
    outside_before = {path for path in tmp_path.rglob("*") if "media" not in path.parts and "tmp" not in path.parts}
    # Files in batches, as a user dropping many at once; ZIPs one per request, as each has its own limits.
    batches = [*_batches(single_files(), FILES_PER_REQUEST),
               *((item,) for item in hostile_zips(max_unpacked_bytes=UNPACKED_CAP_BYTES))]
    peak_before = _peak_rss_bytes()

    for batch in batches:
        cpu_before = _cpu_s()
        response = _send(client, project_id, batch)
        cpu_per_file_s = (_cpu_s() - cpu_before) / len(batch)

        assert response.status_code == 201, response.content[:300]
        body = response.json()
        assert body["stems"] == [], [stem["filename"] for stem in body["stems"]]
        expected = [name for item in batch for name in item.refused_names]
        assert sorted(reject["filename"] for reject in body["rejected"]) == sorted(expected)
        assert all(reject["reason"].endswith(".") and len(reject["reason"]) > 10 for reject in body["rejected"])
        assert cpu_per_file_s < CPU_PER_FILE_S, [item.name for item in batch]
        assert list(upload_temp_dir.iterdir()) == [], "the request's temporary folder is left behind"

    assert _peak_rss_bytes() - peak_before < MEMORY_GROWTH_BYTES
    assert _snapshot(media_root) == media_before
    assert list(Stem.objects.order_by("position").values_list("id", "name", "file")) == stems_before
    assert MixVersion.objects.values_list("id", "params", "wav24_file").get() == version_before
    assert Reference.objects.values_list("filename", "file").get() == reference_before
    outside_after = {path for path in tmp_path.rglob("*") if "media" not in path.parts and "tmp" not in path.parts}
    assert outside_after == outside_before
    assert not list(Path.cwd().glob("*.wav")) and not Path("/etc/abs.wav").exists()


def test_silent_files_are_kept_as_silent_stems_and_the_others_untouched(client, rendered_project):
    stems_before = list(Stem.objects.order_by("position").values_list("id", "name", "file"))
    body = _send(client, rendered_project["id"], silent_files()).json()
    assert body["rejected"] == []
    assert [(stem["filename"], stem["silent"]) for stem in body["stems"]] == [
        (item.name, True) for item in silent_files()]
    assert list(Stem.objects.order_by("position").values_list("id", "name", "file"))[:len(stems_before)] == stems_before


REFERENCE_SAMPLES = {"cut12_song.flac", "cut44_song.ogg", "rate_10000000hz.wav", "channels_1000.wav", "nan_middle.wav",
                     "frames_2e36.flac", "bomb_20min.flac", "bomb_11min_silent.flac", "notes.m4a"}


@pytest.mark.parametrize("item", [item for item in (*single_files(), *silent_files())
                                  if item.name in REFERENCE_SAMPLES], ids=lambda item: item.name)
def test_a_malformed_reference_file_answers_400_with_its_name_and_reason(client, ready_project, item):
    response = reference_upload(client, ready_project["id"], item.content, name=item.name)

    assert response.status_code == 400, response.content[:300]
    message = response.json()["error"]["message"]
    assert message.startswith(f"{item.name}: ") and message.endswith(".")
    assert Reference.objects.get().filename == "Ref Song.wav"


def test_zip_limits_are_read_from_the_directory_before_anything_is_unpacked(
    client, ready_project, settings, upload_temp_dir, monkeypatch
):
    """A bomb is refused without writing a byte of it: the archive's directory already says too much."""
    settings.MIXREF_UPLOAD_MAX_UNPACKED_BYTES = UNPACKED_CAP_BYTES
    written = []
    real_open = open

    def watching_open(path, mode="r", *args, **kwargs):
        if "x" in mode:  # archive.py creates each unpacked file with "xb"
            written.append(path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    bombs = [item for item in hostile_zips(max_unpacked_bytes=UNPACKED_CAP_BYTES)
             if item.name in {"bomb.zip", "bomb_split.zip", "bogus_999.zip", "thousands.zip", "too_many_stems.zip"}]
    for item in bombs:
        reason = _send(client, ready_project["id"], (item,)).json()["rejected"][0]["reason"]
        assert any(words in reason for words in ("unpacks to more than 4 MB", "at most 64 can be added at once",
                                                  "the maximum is 1000")), reason
    assert written == []


def test_zip_entries_count_against_the_files_cap_of_the_request(client, ready_project, settings):
    settings.MIXREF_UPLOAD_MAX_FILES = 4
    archive = zip_of([(f"{index}.wav", CORRUPT_WAV) for index in range(3)])

    files = {"a.zip": archive, "b.wav": CORRUPT_WAV, "c.wav": CORRUPT_WAV}

    body = stems_upload(client, ready_project["id"], files).json()

    refused = {"filename": "a.zip", "reason": "it holds 3 audio files; at most 2 can be added at once."}
    assert refused in body["rejected"]
