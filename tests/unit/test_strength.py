"""Match strength: 0 gives the neutral mix, 1 the full match, 0.5 halfway on each parameter's scale."""
import math

import pytest

from mixing.params import MASTER_SPECS, TRACK_SPECS, MixParams
from mixing.session import MixSession
from mixing.strength import DIMENSION_OF_PARAM, DIMENSIONS, apply_strength
from tests.unit.test_session import stems


def mixes() -> tuple[MixParams, MixParams]:
    """A neutral mix and a full match of three tracks differing in every dimension; the full match leans right."""
    neutral = MixParams.default(3)
    full = MixParams.default(3)
    for index, (start, end) in enumerate(zip(neutral.tracks, full.tracks, strict=True)):
        start.update(gain_db=-2.0, pan_pct=[-40.0, 0.0, 40.0][index], comp_ratio=1.5, eq_band2_freq_hz=500.0)
        end.update(gain_db=4.0, pan_pct=[0.0, 60.0, 90.0][index], comp_ratio=6.0, eq_band2_freq_hz=2000.0,
                   eq_band2_gain_db=6.0, comp_threshold_db=-30.0)
    neutral.master.update(master_comp_threshold_db=-18.0, master_loudness_lufs=-14.0)
    full.master.update(master_comp_threshold_db=-24.0, master_loudness_lufs=-9.0, master_width_pct=140.0,
                       master_balance_pct=30.0, master_match_eq_05_gain_db=-4.0, master_match_eq_05_lr_db=2.0,
                       master_expander_ratio=2.0)
    return neutral, full


def test_every_parameter_has_one_dimension_or_none():
    assert set(DIMENSION_OF_PARAM) == set(TRACK_SPECS) | set(MASTER_SPECS)
    assert set(DIMENSION_OF_PARAM.values()) == {*DIMENSIONS, None}
    assert DIMENSION_OF_PARAM["master_ceiling_dbtp"] is None
    assert DIMENSION_OF_PARAM["master_match_eq_05_gain_db"] == "tone"
    assert DIMENSION_OF_PARAM["master_match_eq_05_lr_db"] == "balance"
    assert DIMENSION_OF_PARAM["master_expander_ratio"] == "dynamics"


def test_zero_strength_is_the_neutral_mix_and_full_strength_the_full_match():
    neutral, full = mixes()
    assert apply_strength(neutral, full, dict.fromkeys(DIMENSIONS, 0.0)) == neutral
    assert apply_strength(neutral, full, dict.fromkeys(DIMENSIONS, 1.0)) == full
    assert apply_strength(neutral, full, {}) == full


def test_half_strength_is_halfway_in_each_dimensions_units():
    neutral, full = mixes()
    half = apply_strength(neutral, full, dict.fromkeys(DIMENSIONS, 0.5))
    track = half.tracks[0]
    assert track["gain_db"] == pytest.approx(1.0)  # tone, dB
    assert track["eq_band2_gain_db"] == pytest.approx(3.0)
    assert track["eq_band2_freq_hz"] == pytest.approx(1000.0)  # a log-scale parameter: the geometric middle
    assert track["comp_threshold_db"] == pytest.approx(-15.0)  # dynamics
    assert track["comp_ratio"] == pytest.approx(math.sqrt(1.5 * 6.0))
    assert [values["pan_pct"] for values in half.tracks] == pytest.approx([-20.0, 30.0, 65.0])
    master = half.master
    assert master["master_comp_threshold_db"] == pytest.approx(-21.0)
    assert master["master_width_pct"] == pytest.approx(120.0)
    assert master["master_balance_pct"] == pytest.approx(15.0)
    assert master["master_match_eq_05_gain_db"] == pytest.approx(-2.0)
    assert master["master_match_eq_05_lr_db"] == pytest.approx(1.0)
    assert master["master_loudness_lufs"] == pytest.approx(-11.5)


def test_each_dimension_moves_only_its_own_parameters():
    neutral, full = mixes()
    only_tone = apply_strength(neutral, full, {**dict.fromkeys(DIMENSIONS, 0.0), "tone": 1.0})
    assert only_tone.tracks[0]["eq_band2_gain_db"] == 6.0 and only_tone.tracks[0]["gain_db"] == 4.0
    assert only_tone.master["master_match_eq_05_gain_db"] == -4.0
    assert only_tone.tracks[0]["comp_ratio"] == 1.5
    assert only_tone.master["master_loudness_lufs"] == -14.0
    assert only_tone.master["master_balance_pct"] == 0.0 and only_tone.master["master_match_eq_05_lr_db"] == 0.0
    assert [values["pan_pct"] for values in only_tone.tracks] == [-40.0, 0.0, 40.0]


def test_pans_lean_follows_balance_and_their_spread_follows_width():
    neutral, full = mixes()  # neutral pans -40, 0, 40 (no lean); full 0, 60, 90 (lean 50, spread -50, 10, 40)
    no_lean = apply_strength(neutral, full, {"balance": 0.0})
    assert [values["pan_pct"] for values in no_lean.tracks] == pytest.approx([-50.0, 10.0, 40.0])
    assert no_lean.master["master_width_pct"] == 140.0
    no_spread = apply_strength(neutral, full, {"width": 0.0})
    assert [values["pan_pct"] for values in no_spread.tracks] == pytest.approx([10.0, 50.0, 90.0])


def test_bad_strengths_are_refused_by_name():
    neutral, full = mixes()
    with pytest.raises(ValueError, match="tone strength"):
        apply_strength(neutral, full, {"tone": 1.5})
    with pytest.raises(ValueError, match="unknown match dimension 'reverb'"):
        apply_strength(neutral, full, {"reverb": 0.5})
    with pytest.raises(ValueError, match="2 tracks"):
        apply_strength(MixParams.default(2), full, {})


def test_the_sessions_neutral_mix_is_the_expert_start_at_streaming_loudness():
    session = MixSession(stems(), device="cpu")
    neutral = session.neutral_params()
    assert neutral.master["master_loudness_lufs"] == -14.0
    assert neutral.master["master_comp_ratio"] == 2.0  # the expert start's gentle bus compression
    assert neutral.tracks[0]["gain_db"] == 1.0  # "Bass": the expert start's role offset
