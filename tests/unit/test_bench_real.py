"""bench/real.py's measures on signals whose answers are known: the high-band errors and the own-mix balance."""
import math

import pytest
import torch

from bench.real import (
    _equal_loudness_balance,
    balance_errors_db,
    high_band_errors_db,
    load_song,
    matchering_master,
    own_levels_db,
    synthetic_mix,
)
from mixing import SAMPLE_RATE
from mixing.audio import Stems
from mixing.loudness import integrated_loudness_lufs
from mixing.params import MixParams
from mixing.session import MixSession
from tests.signals import noise, write_audio


def test_a_side_6_db_louder_reads_plus_6_db_above_4_khz_and_the_mid_unchanged():
    left, right = noise(2.0, rms=0.1, seed=1), noise(2.0, rms=0.1, seed=2)
    mid, side = (left + right) / 2, (left - right) / 2
    reference = torch.cat([mid + side, mid - side]).unsqueeze(0)
    wider = torch.cat([mid + 2 * side, mid - 2 * side]).unsqueeze(0)
    errors = high_band_errors_db(wider, reference, SAMPLE_RATE)
    assert errors["side_high_mean_db"] == pytest.approx(20 * math.log10(2), abs=0.05)
    assert errors["side_high_rms_db"] == pytest.approx(20 * math.log10(2), abs=0.05)
    assert errors["mid_high_rms_db"] < 0.05
    assert high_band_errors_db(reference, reference, SAMPLE_RATE)["side_high_rms_db"] == 0.0


def stems(lead_channels: int = 2) -> Stems:
    return Stems(["Bass", "VOX LEAD", "Pad"], [noise(2.0, rms=0.2, channels=2, seed=3),
                                              noise(2.0, rms=0.05, channels=lead_channels, seed=4),
                                              noise(2.0, rms=0.1, channels=2, seed=5)], SAMPLE_RATE, [])


def test_unity_faders_on_untrimmed_stereo_stems_have_no_balance_error_and_a_fader_move_shows_in_full():
    session = MixSession(stems(), device="cpu", trim_db=[0.0, 0.0, 0.0])
    params = MixParams.default(3)
    error = balance_errors_db(session, params, stems(), own_levels_db(stems()))
    balance, lead = error.rms_db, error.lead_vocal_db
    assert balance == pytest.approx(0.0, abs=0.01) and lead == pytest.approx(0.0, abs=0.01)
    params.tracks[1]["gain_db"] = 6.0
    error = balance_errors_db(session, params, stems(), own_levels_db(stems()))
    balance, lead = error.rms_db, error.lead_vocal_db
    # +6 dB on one of three tracks: its error is 6 - 2 = +4 dB, the others' -2 dB.
    assert lead == pytest.approx(4.0, abs=0.05)
    assert balance == pytest.approx(math.sqrt((16 + 4 + 4) / 3), abs=0.05)


def test_a_mono_stem_at_unity_sits_3_db_under_the_sum_that_copies_it_to_both_channels():
    # The pan law puts a centred mono track at -3.01 dB in each channel; the plain sum copies it at full level.
    session = MixSession(stems(lead_channels=1), device="cpu", trim_db=[0.0, 0.0, 0.0])
    lead = balance_errors_db(session, MixParams.default(3), stems(lead_channels=1),
                             own_levels_db(stems(lead_channels=1))).lead_vocal_db
    assert lead == pytest.approx(-10 * math.log10(2) * 2 / 3, abs=0.05)


def test_equal_loudness_moves_each_track_by_minus_its_loudness():
    error = _equal_loudness_balance(stems(), own_levels_db(stems()))
    balance, lead = error.rms_db, error.lead_vocal_db
    # White noise of RMS 0.2, 0.05 and 0.1: loudness 0, -12.04 and -6.02 dB apart. Brought to one loudness the
    # tracks move by 0, +12.04 and +6.02 dB, +6.02 dB on average: errors -6.02, +6.02 and 0 dB.
    assert lead == pytest.approx(6.02, abs=0.1)
    assert balance == pytest.approx(math.sqrt(2 * 6.02**2 / 3), abs=0.1)


def test_a_song_is_cut_to_its_loudest_window_and_its_stem_sum_kept(tmp_path):
    folder = tmp_path / "1.Song"
    folder.mkdir()
    quiet_then_loud = torch.cat([noise(3.0, rms=0.001, seed=6), noise(3.0, rms=0.2, seed=7)], dim=-1)
    write_audio(folder / "1.Song_Stem_DRUMS.wav", quiet_then_loud)
    write_audio(folder / "1.Song_Stem_BASS.wav", noise(6.0, rms=0.05, channels=2, seed=8))
    song = load_song(folder, window_s=2.0)
    assert song.mix_source == "stem sum" and song.window_start_s >= 3.0
    assert song.stem_sum.shape == (2, 2 * SAMPLE_RATE) and torch.equal(song.mix, song.stem_sum)
    assert len(song.stems.audio) == 2


def test_matchering_masters_a_quiet_mix_up_to_the_references_loudness():
    quiet = noise(20.0, rms=0.01, channels=2, seed=9)
    reference = noise(20.0, rms=0.1, channels=2, seed=10)
    mastered = matchering_master(quiet, reference, SAMPLE_RATE)
    assert mastered.shape == quiet.shape
    assert integrated_loudness_lufs(mastered, SAMPLE_RATE) == pytest.approx(
        integrated_loudness_lufs(reference, SAMPLE_RATE), abs=1.5)


def test_the_synthetic_references_own_settings_on_the_console_have_no_balance_error():
    song = stems(lead_channels=1)
    synthetic = synthetic_mix(song, seed=3)
    assert all(abs(gain_db) <= 6.0 for gain_db in synthetic.gain_db) and len(set(synthetic.gain_db)) == 3
    assert synthetic_mix(song, seed=3).gain_db == synthetic.gain_db != synthetic_mix(song, seed=4).gain_db
    params = MixParams.default(3)
    for row, gain_db, pan_pct, eq_db in zip(params.tracks, synthetic.gain_db, synthetic.pan_pct, synthetic.eq_db,
                                            strict=True):
        row.update(eq_db, gain_db=gain_db, pan_pct=pan_pct, eq_band2_q=1.0, comp_ratio=1.0)
    session = MixSession(song, device="cpu", trim_db=[0.0, 0.0, 0.0])
    error = balance_errors_db(session, params, song, synthetic.levels_db)
    assert error.rms_db == pytest.approx(0.0, abs=0.01)
    # The truth is each track's part of the sum: the parts' powers add up to the sum's (independent noises).
    total_db = 10 * math.log10(sum(10 ** (level_db / 10) for level_db in synthetic.levels_db))
    assert total_db == pytest.approx(10 * math.log10(float(synthetic.audio.double().square().mean())), abs=0.05)
