"""Training: random plausible settings, the data folders, the loop (methods 1 and 2), resume, the CLI."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from mixing import SAMPLE_RATE
from mixing.controller import REFERENCE_INPUT_LUFS, load_checkpoint
from mixing.dsp.console import IncrementalRenderer
from mixing.loudness import integrated_loudness_lufs
from mixing.params import MASTER_SPECS, TRACK_INPUT_LUFS, TRACK_SPECS, MixParams
from mixing.train import (
    ReferenceFolder,
    SessionFolder,
    TrainConfig,
    lift_buried_tracks,
    make_references,
    random_plausible_params,
    train,
)
from mixing.train.__main__ import main
from mixing.train.loop import _batches
from tests.signals import noise, sine, write_audio

SESSION_S = 2.0
EXCERPT_S = 0.5


def _session(folder, seed: int, *, silent_track: bool = False, quiet_first_half: bool = False):
    folder.mkdir(parents=True)
    stems = [
        noise(SESSION_S, rms=0.05, seed=seed),
        sine(110.0 * (seed + 1), SESSION_S, amplitude=0.2),
        noise(SESSION_S, rms=0.02, channels=2, seed=seed + 10) + sine(1500.0, SESSION_S, amplitude=0.05, channels=2),
    ]
    if quiet_first_half:
        half = stems[0].shape[-1] // 2
        stems = [torch.cat([1e-4 * stem[:, :half], stem[:, half:]], dim=-1) for stem in stems]
    if silent_track:
        stems.append(torch.zeros(1, stems[0].shape[-1]))
    for index, stem in enumerate(stems):
        write_audio(folder / f"{index + 1:02d}_Track{index + 1}.wav", stem, subtype="FLOAT")


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    for seed in range(2):
        _session(root / "sessions" / f"session_{seed}", seed)
    (root / "references").mkdir()
    write_audio(root / "references" / "song_a.wav", noise(SESSION_S, rms=0.1, channels=2, seed=7))
    write_audio(root / "references" / "song_b.wav", sine(440.0, SESSION_S, amplitude=0.3))
    return root


def _config(data_dirs, out, **overrides) -> TrainConfig:
    values = dict(
        sessions=str(data_dirs / "sessions"),
        references=str(data_dirs / "references"),
        method=1,
        steps=2,
        out=str(out),
        batch_size=2,
        learning_rate=1e-3,
        excerpt_s=EXCERPT_S,
        track_range=(2, 3),
        model_config="tiny",
        seed=3,
        log_every=1,
    )
    values.update(overrides)
    return TrainConfig(**values)


# --- random_plausible_params ---------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_random_plausible_params_stay_in_schema_and_plausible_ranges(seed):
    params = random_plausible_params(6, torch.Generator().manual_seed(seed))
    MixParams.from_preset(params.to_preset())  # raises on anything outside the schema
    assert len(params.tracks) == 6
    for row in params.tracks:
        assert -12.0 <= row["gain_db"] <= 12.0
        eq_gains_db = [value for name, value in row.items() if name.startswith("eq_") and name.endswith("_gain_db")]
        assert len(eq_gains_db) == 6 and all(-6.0 <= value <= 6.0 for value in eq_gains_db)
        assert 1.0 <= row["comp_ratio"] <= 4.0
        level_db = TRACK_INPUT_LUFS + row["gain_db"]
        assert level_db - 10.0 <= row["comp_threshold_db"] <= level_db + 6.0
        assert -80.0 <= row["pan_pct"] <= 80.0
    assert 1.0 <= params.master["master_comp_ratio"] <= 3.0
    assert 60.0 <= params.master["master_width_pct"] <= 150.0
    assert set(params.master) == set(MASTER_SPECS) and set(params.tracks[0]) == set(TRACK_SPECS)


def test_random_plausible_params_repeat_per_seed_and_leave_global_state_alone():
    torch.manual_seed(0)
    expected_global = torch.rand(1)
    torch.manual_seed(0)
    first = random_plausible_params(4, torch.Generator().manual_seed(11))
    assert torch.rand(1) == expected_global
    assert random_plausible_params(4, torch.Generator().manual_seed(11)) == first
    assert random_plausible_params(4, torch.Generator().manual_seed(12)) != first


def test_random_plausible_params_spread_tracks_across_the_stereo_field():
    pans = [row["pan_pct"] for row in random_plausible_params(64, torch.Generator().manual_seed(5)).tracks]
    assert min(pans) < -40.0 and max(pans) > 40.0


def test_random_plausible_params_reject_zero_tracks():
    with pytest.raises(ValueError, match="at least 1"):
        random_plausible_params(0, torch.Generator())


def test_lift_buried_tracks_raises_fader_and_threshold_together_to_the_floor():
    tracks = [noise(1.0, rms=0.1, seed=1), sine(440.0, 1.0, amplitude=0.1), noise(1.0, rms=0.05, channels=2, seed=2),
              torch.zeros(1, SAMPLE_RATE)]
    params = MixParams.default(4)
    # Buried 30 dB under the first track, and squashed by its compressor (threshold under its level).
    params.tracks[1].update(gain_db=-27.0, comp_ratio=4.0, comp_threshold_db=-60.0)
    before_db = IncrementalRenderer(tracks, SAMPLE_RATE).track_levels(params)
    assert before_db[0] - before_db[1] > 25.0

    lifted = lift_buried_tracks(params, IncrementalRenderer(tracks, SAMPLE_RATE), max_drop_db=20.0)
    after_db = IncrementalRenderer(tracks, SAMPLE_RATE).track_levels(lifted)
    assert after_db[0] - after_db[1] == pytest.approx(20.0, abs=0.05)
    lift_db = lifted.tracks[1]["gain_db"] - params.tracks[1]["gain_db"]
    assert lifted.tracks[1]["comp_threshold_db"] - params.tracks[1]["comp_threshold_db"] == pytest.approx(lift_db)
    # Tracks within the floor and the silent track keep their settings.
    assert [lifted.tracks[i] for i in (0, 2, 3)] == [params.tracks[i] for i in (0, 2, 3)]
    assert after_db[0] == pytest.approx(before_db[0]) and after_db[2] == pytest.approx(before_db[2])


# --- data ----------------------------------------------------------------------


def test_session_windows_skip_quiet_passages_and_silent_tracks(tmp_path):
    _session(tmp_path / "s" / "only", 0, silent_track=True, quiet_first_half=True)
    folder = SessionFolder(tmp_path / "s")
    samples = int(EXCERPT_S * SAMPLE_RATE)
    for seed in range(5):
        tracks = folder.sample(np.random.default_rng(seed), samples=samples, track_range=(1, 8), parts=2)
        assert 1 <= len(tracks) <= 3  # the silent fourth stem never plays
        for track in tracks:
            assert track.shape[-1] == samples
            # The window lies in the loud half: no part of it is at the -80 dB level of the first half.
            assert float(track[:, : samples // 2].square().mean()) > 1e-6


def test_session_tracks_are_trimmed_to_the_console_input_level(data_dirs):
    folder = SessionFolder(data_dirs / "sessions")
    for stem in folder.sessions[0]:
        loudness = integrated_loudness_lufs(stem.read(0, stem.frames), SAMPLE_RATE)
        assert loudness == pytest.approx(TRACK_INPUT_LUFS, abs=0.1)


def test_session_sample_honours_the_track_range(data_dirs):
    folder = SessionFolder(data_dirs / "sessions")
    counts = {len(folder.sample(np.random.default_rng(seed), samples=4096, track_range=(2, 3))) for seed in range(12)}
    assert counts == {2, 3}


def test_reference_windows_are_stereo_at_the_controller_input_level(data_dirs):
    folder = ReferenceFolder(data_dirs / "references")
    samples = int(EXCERPT_S * SAMPLE_RATE)
    for seed in range(4):
        reference = folder.sample(np.random.default_rng(seed), samples=samples)
        assert reference.shape == (2, samples)
        assert integrated_loudness_lufs(reference, SAMPLE_RATE) == pytest.approx(REFERENCE_INPUT_LUFS, abs=0.1)


# --- the loop ------------------------------------------------------------------


def test_method_1_trains_saves_a_loadable_checkpoint_repeats_per_seed_and_resumes(data_dirs, tmp_path):
    lines = []
    model = train(_config(data_dirs, tmp_path / "a.pt"), log=lines.append)
    untrained = train(_config(data_dirs, tmp_path / "zero.pt", steps=0), log=lines.append)
    initial = untrained.state_dict()
    changed = [name for name, value in model.state_dict().items() if not torch.equal(value, initial[name])]
    assert changed, "two steps changed no weight"

    loaded = load_checkpoint(tmp_path / "a.pt")
    info = loaded.training_info
    assert info["steps"] == 2 and info["method"] == 1
    assert set(info["final_losses"]) == {"total", "af", "mrstft", "param"}
    assert all(np.isfinite(value) for value in info["final_losses"].values())
    assert any(line.startswith("step 2 ") for line in lines)

    again = train(_config(data_dirs, tmp_path / "b.pt"), log=lines.append)
    assert all(torch.equal(value, again.state_dict()[name]) for name, value in model.state_dict().items())

    resumed = train(_config(data_dirs, tmp_path / "c.pt", steps=1, resume=str(tmp_path / "a.pt")), log=lines.append)
    assert resumed.training_info["steps"] == 3
    assert [stage["last_step"] for stage in resumed.training_info["stages"]] == [2, 3]
    assert any(not torch.equal(value, resumed.state_dict()[name]) for name, value in model.state_dict().items())


@pytest.mark.slow
def test_examples_made_in_worker_processes_are_those_of_the_training_process(data_dirs, tmp_path):
    # The examples of a step depend only on (seed, step); a worker computes on one thread, so sums may round apart.
    config = _config(data_dirs, tmp_path / "w.pt", device="cpu", steps=3)
    sessions = SessionFolder(config.sessions)
    here = list(_batches(config, sessions, None, 1, 4))
    ahead = list(_batches(dataclasses.replace(config, workers=2), sessions, None, 1, 4))
    assert [len(batch) for batch in ahead] == [config.batch_size] * 3
    for batch_here, batch_ahead in zip(here, ahead, strict=True):
        for mine, theirs in zip(batch_here, batch_ahead, strict=True):
            assert [track.shape for track in mine.tracks] == [track.shape for track in theirs.tracks]
            for name in ("reference", "target", "track_norm", "master_norm"):
                torch.testing.assert_close(getattr(theirs, name), getattr(mine, name), atol=1e-6, rtol=0)
    model = train(dataclasses.replace(config, workers=2), log=lambda line: None)
    assert model.training_info["steps"] == 3 and model.training_info["stages"][0]["workers"] == 2


def test_method_1_without_the_parameter_loss_reports_only_audio_terms(data_dirs, tmp_path):
    model = train(_config(data_dirs, tmp_path / "m.pt", steps=1, param_loss_weight=0.0), log=lambda line: None)
    assert set(model.training_info["final_losses"]) == {"total", "af", "mrstft"}


def test_method_2_trains_on_reference_songs_with_the_af_loss(data_dirs, tmp_path):
    model = train(_config(data_dirs, tmp_path / "m2.pt", method=2, steps=1), log=lambda line: None)
    losses = model.training_info["final_losses"]
    assert set(losses) == {"total", "af"} and np.isfinite(losses["af"])


def test_a_zero_time_budget_stops_before_the_first_step(data_dirs, tmp_path):
    model = train(_config(data_dirs, tmp_path / "t.pt", time_budget_s=0.0), log=lambda line: None)
    assert model.training_info["steps"] == 0


def test_method_2_needs_references():
    with pytest.raises(ValueError, match="reference"):
        TrainConfig(sessions="s", method=2, steps=1, out="o.pt")


# --- references and the command line -------------------------------------------


def test_make_references_writes_songs_with_their_ground_truth_presets(data_dirs, tmp_path):
    paths = make_references(data_dirs / "sessions", tmp_path / "refs", seed=4)
    assert [path.name for path in paths] == ["session_0.wav", "session_1.wav"]
    songs = ReferenceFolder(tmp_path / "refs")
    assert all(song.channels == 2 and song.frames == int(SESSION_S * SAMPLE_RATE) for song in songs.songs)
    preset = json.loads((tmp_path / "refs" / "session_0.json").read_text())
    params = MixParams.from_preset(preset)
    tracks = [stem.read(0, stem.frames) for stem in SessionFolder(data_dirs / "sessions").sessions[0]]
    assert params == lift_buried_tracks(random_plausible_params(3, torch.Generator().manual_seed(4)),
                                        IncrementalRenderer(tracks, SAMPLE_RATE))
    loudness = integrated_loudness_lufs(songs.songs[0].read(0, songs.songs[0].frames), SAMPLE_RATE)
    assert loudness == pytest.approx(params.master["master_loudness_lufs"], abs=1.0)


def test_cli_trains_the_tiny_model(data_dirs, tmp_path, capsys):
    out = tmp_path / "cli.pt"
    status = main([
        "--sessions", str(data_dirs / "sessions"), "--method", "1", "--steps", "1", "--batch-size", "1",
        "--excerpt-s", str(EXCERPT_S), "--max-tracks", "3", "--config", "tiny", "--out", str(out), "--seed", "2",
    ])
    assert status == 0
    assert load_checkpoint(out).training_info["stages"][0]["model_config"] == "tiny"
    assert "step 1 " in capsys.readouterr().err


def test_cli_reports_a_missing_folder_as_an_error(tmp_path, capsys):
    status = main(
        ["--sessions", str(tmp_path / "nowhere"), "--method", "1", "--steps", "1", "--out", str(tmp_path / "x.pt")]
    )
    assert status == 1
    assert "session folder not found" in capsys.readouterr().err
