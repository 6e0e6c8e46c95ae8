"""The pure parts of the studio benchmark (bench/studio.py): the job's times and a real song's files.
The benchmark itself starts the whole app and is run by hand, not here."""
import pytest

from bench.studio import real_song_audio, server_duration_s


def test_server_duration_is_the_jobs_updated_minus_created_time():
    job = {"created_at": "2025-01-02T10:00:00.500000+00:00", "updated_at": "2025-01-02T10:00:31.750000+00:00"}

    assert server_duration_s(job) == pytest.approx(31.25)


def test_server_duration_is_none_when_the_job_lacks_its_times():
    assert server_duration_s({"created_at": "2025-01-02T10:00:00+00:00", "updated_at": None}) is None


def test_real_song_audio_takes_the_stems_in_name_order_and_leaves_the_master_out(tmp_path):
    for name in ["Song_Stem_KICK.m4a", "Song_Master.m4a", "Song_Stem_bass.m4a", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")

    assert [path.name for path in real_song_audio(tmp_path)] == ["Song_Stem_bass.m4a", "Song_Stem_KICK.m4a"]
