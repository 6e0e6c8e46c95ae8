"""The pure parts of the studio benchmark (bench/studio.py): reading the job's polled stages into timings.
The benchmark itself starts the whole app and is run by hand, not here."""
import pytest

from bench.studio import server_duration_s, stage_name, stage_timings


@pytest.mark.parametrize(
    ("stage", "status", "expected"),
    [
        ("fitting: iteration 12, AF loss 0.0412", "running", "fitting"),
        ("measuring: -14.0 LUFS, -1.0 dBTP", "running", "measuring"),
        ("loading 8 stems and the reference", "running", "loading 8 stems and the reference"),
        ("analysing the mix", "running", "analysing the mix"),
        ("", "queued", "queued"),
        ("", "running", "running"),
        ("done", "succeeded", "done"),
    ],
)
def test_stage_name_drops_the_detail_after_the_first_colon_and_falls_back_to_the_status(stage, status, expected):
    assert stage_name(stage, status) == expected


def test_stage_timings_keep_first_sight_of_each_stage_and_last_until_the_next_new_one():
    observations = [(0.0, "queued"), (0.25, "queued"), (0.5, "loading"), (1.0, "fitting"), (1.25, "fitting"),
                    (3.0, "matching"), (3.5, "done")]

    timings = stage_timings(observations)

    assert [t["stage"] for t in timings] == ["queued", "loading", "fitting", "matching", "done"]
    assert [t["first_seen_s"] for t in timings] == [0.0, 0.5, 1.0, 3.0, 3.5]
    assert [t["duration_s"] for t in timings] == [0.5, 0.5, 2.0, 0.5, None]


def test_stage_timings_count_a_stage_seen_again_from_its_first_sight():
    timings = stage_timings([(0.0, "fitting"), (1.0, "matching"), (2.0, "fitting"), (4.0, "done")])

    assert [(t["stage"], t["first_seen_s"], t["duration_s"]) for t in timings] == [
        ("fitting", 0.0, 1.0), ("matching", 1.0, 3.0), ("done", 4.0, None)]


def test_stage_timings_of_no_observations_is_empty():
    assert stage_timings([]) == []


def test_server_duration_is_the_jobs_updated_minus_created_time():
    job = {"created_at": "2025-01-02T10:00:00.500000+00:00", "updated_at": "2025-01-02T10:00:31.750000+00:00"}

    assert server_duration_s(job) == pytest.approx(31.25)


def test_server_duration_is_none_when_the_job_lacks_its_times():
    assert server_duration_s({"created_at": "2025-01-02T10:00:00+00:00", "updated_at": None}) is None
