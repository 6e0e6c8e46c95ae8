"""The training data generator: composition (pure Python) and sessions rendered through FluidSynth."""
import hashlib
import json

import mido
import numpy as np
import pytest
import soundfile as sf

from mixing.datagen import MAX_STEMS, SESSION_FILE, find_fluidsynth, generate_session, generate_sessions
from mixing.datagen.__main__ import main
from mixing.datagen.compose import (
    CORE_ROLES,
    DRUM_CHANNEL,
    MODES,
    choose_roles,
    compose_song,
    part_to_midi,
    plan_song,
)
from mixing.errors import MixingError

TINY_S = 4.0


def _renderer_or_skip():
    try:
        find_fluidsynth()
    except MixingError as error:
        pytest.skip(f"FluidSynth rendering unavailable: {error}")


@pytest.fixture(scope="module")
def tiny_session(tmp_path_factory):
    _renderer_or_skip()
    return generate_session(tmp_path_factory.mktemp("tiny"), seed=3, duration_s=TINY_S, num_stems=4)


def _description(session_dir):
    return json.loads((session_dir / SESSION_FILE).read_text())


def _hashes(session_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(session_dir.iterdir())}


def _mono(session_dir, name):
    stem = next(s for s in _description(session_dir)["stems"] if s["name"] == name)
    audio, sample_rate = sf.read(session_dir / stem["file"], always_2d=True)
    return audio.mean(axis=1), sample_rate


def _spectral_centroid_hz(audio, sample_rate):
    magnitude = np.abs(np.fft.rfft(audio))
    return float(np.sum(magnitude * np.fft.rfftfreq(len(audio), 1 / sample_rate)) / np.sum(magnitude))


# --- composition, no rendering -------------------------------------------------------------------


def test_choose_roles_starts_with_the_core_band_and_never_repeats_a_stem():
    rng = np.random.default_rng(0)
    assert choose_roles(rng, 4) == ["Drums", "Bass", "Keys", "Lead"]
    for count in (6, 8, MAX_STEMS):
        roles = choose_roles(rng, count)
        assert len(roles) == len(set(roles)) == count
        assert set(CORE_ROLES) <= set(roles)


@pytest.mark.parametrize("num_stems", [0, MAX_STEMS + 1])
def test_choose_roles_rejects_impossible_stem_counts(num_stems):
    with pytest.raises(ValueError, match="num_stems"):
        choose_roles(np.random.default_rng(0), num_stems)


def test_composition_is_reproducible_from_the_seed_alone():
    first = compose_song(np.random.default_rng(11), duration_s=20, num_stems=8)
    again = compose_song(np.random.default_rng(11), duration_s=20, num_stems=8)
    other = compose_song(np.random.default_rng(12), duration_s=20, num_stems=8)
    assert first == again
    assert first != other


def test_song_plans_cover_the_tempo_range_modes_and_energy_changes():
    plans = [plan_song(np.random.default_rng(seed), 120.0) for seed in range(20)]
    tempos = [plan.tempo_bpm for plan in plans]
    assert all(70 <= t <= 160 for t in tempos) and max(tempos) - min(tempos) > 30
    assert len({plan.mode for plan in plans}) >= 2 and {plan.mode for plan in plans} <= set(MODES)
    for plan in plans:
        assert plan.seconds(plan.total_bars * 4) >= 120.0
        energies = [section.energy for section in plan.sections]
        assert max(energies) - min(energies) > 0.3, "a two-minute song needs quiet and loud sections"


def test_notes_are_valid_midi_inside_the_song_and_some_stems_enter_late():
    late_entries = 0
    for seed in range(6):
        song = compose_song(np.random.default_rng(seed), duration_s=30, num_stems=8)
        last_beat = song.duration_s * song.plan.tempo_bpm / 60
        for part in song.parts:
            assert part.notes, f"{part.name} has no notes"
            assert all(0 <= n.start_beats < last_beat and n.length_beats > 0 for n in part.notes)
            assert all(0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 for n in part.notes)
            late_entries += song.plan.seconds(part.notes[0].start_beats) > 2.0
    assert late_entries > 0


def test_midi_file_puts_drums_on_the_percussion_channel_and_lasts_until_the_end_given():
    song = compose_song(np.random.default_rng(5), duration_s=10, num_stems=4)
    end_beats = 12 * song.plan.tempo_bpm / 60
    for part in song.parts:
        midi = part_to_midi(part, song.plan, end_beats=end_beats)
        channels = {m.channel for m in midi.tracks[0] if m.type == "note_on"}
        assert channels == {DRUM_CHANNEL} if part.is_drums else DRUM_CHANNEL not in channels
        assert midi.length == pytest.approx(12.0, abs=1e-3)
        sends = {(m.control, m.value) for m in midi.tracks[0] if m.type == "control_change"}
        assert {(91, 0), (93, 0)} <= sends, "raw stems must be dry: reverb and chorus sends off"
        note_ons = sum(m.type == "note_on" for m in mido.merge_tracks(midi.tracks))
        assert note_ons == len(part.notes)


# --- rendered sessions ---------------------------------------------------------------------------


def test_session_has_one_wav_per_described_stem(tiny_session):
    description = _description(tiny_session)
    assert [s["name"] for s in description["stems"]] == ["Drums", "Bass", "Keys", "Lead"]
    assert sorted(p.name for p in tiny_session.glob("*.wav")) == [s["file"] for s in description["stems"]]
    assert [s["file"] for s in description["stems"]] == ["01_Drums.wav", "02_Bass.wav", "03_Keys.wav", "04_Lead.wav"]
    for stem in description["stems"]:
        assert sf.info(tiny_session / stem["file"]).channels == stem["channels"] in (1, 2)
    assert not list(tiny_session.parent.glob(".*")), "the partial folder must be gone"


def test_stems_share_sample_rate_and_length(tiny_session):
    infos = [sf.info(p) for p in tiny_session.glob("*.wav")]
    assert {i.samplerate for i in infos} == {44100}
    assert {i.frames for i in infos} == {round(TINY_S * 44100)} == {_description(tiny_session)["num_samples"]}


def test_stems_peak_at_their_raw_level_and_are_not_silent(tiny_session):
    for stem in _description(tiny_session)["stems"]:
        audio, _ = sf.read(tiny_session / stem["file"])
        peak_dbfs = 20 * np.log10(np.max(np.abs(audio)))
        rms_dbfs = 10 * np.log10(np.mean(audio**2))
        assert -30 <= stem["peak_dbfs"] <= -3
        assert peak_dbfs == pytest.approx(stem["peak_dbfs"], abs=0.01)
        assert rms_dbfs > stem["peak_dbfs"] - 40, f"{stem['name']} is nearly silent"


def test_bass_is_darker_than_drums_and_lead(tiny_session):
    centroids = {name: _spectral_centroid_hz(*_mono(tiny_session, name)) for name in ("Bass", "Drums", "Lead")}
    assert centroids["Bass"] < 0.5 * centroids["Lead"]
    assert centroids["Bass"] < 0.25 * centroids["Drums"]


def test_stems_carry_different_content(tiny_session):
    stems = [_mono(tiny_session, s["name"])[0] for s in _description(tiny_session)["stems"]]
    correlation = np.corrcoef(np.stack(stems))
    assert np.all(np.abs(correlation[np.triu_indices(len(stems), k=1)]) < 0.5)


def test_same_seed_gives_identical_files_and_another_seed_does_not(tiny_session, tmp_path):
    again = generate_session(tmp_path / "again", seed=3, duration_s=TINY_S, num_stems=4)
    other = generate_session(tmp_path / "other", seed=4, duration_s=TINY_S, num_stems=4)
    assert _hashes(again) == _hashes(tiny_session)
    other_hashes = _hashes(other)
    assert _description(other) != _description(tiny_session)
    assert all(other_hashes[name] != digest for name, digest in _hashes(tiny_session).items())


def test_an_existing_folder_that_is_not_a_session_is_left_alone(tmp_path):
    _renderer_or_skip()
    (tmp_path / "session_1").mkdir()
    (tmp_path / "session_1" / "notes.txt").write_text("mine")
    with pytest.raises(MixingError, match="not a generated session"):
        generate_session(tmp_path, seed=1, duration_s=1.0, num_stems=1)
    assert (tmp_path / "session_1" / "notes.txt").read_text() == "mine"


def test_cli_writes_sessions_that_a_second_run_keeps(tmp_path, capsys):
    _renderer_or_skip()
    assert main([str(tmp_path), "--count", "2", "--duration-s", "1.5", "--seed", "9", "--stems", "2"]) == 0
    assert "[2/2]" in capsys.readouterr().err
    events = []
    paths = generate_sessions(tmp_path, 2, seed=9, duration_s=1.5, num_stems_range=(2, 2), progress=events.append)
    assert [p.name for p in paths] == ["session_00000", "session_00001"]
    assert [e["skipped"] for e in events] == [True, True]
    seeds = {_description(p)["seed"] for p in paths}
    assert len(seeds) == 2
    assert all(len(_description(p)["stems"]) == 2 for p in paths)
