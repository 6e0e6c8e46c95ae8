"""Mix advice: gain moves solved through the renderer, masking found in bark bands, ranking by effect."""
import copy
import json

import pytest
import torch

from mixing import SAMPLE_RATE
from mixing.advice import (
    GAIN_MIN_DB,
    GAIN_TOLERANCE_DB,
    AdviceMemo,
    advise,
    apply,
    band_levels_db,
    find_masking,
    track_spectra,
)
from mixing.audio import Stems
from mixing.params import MATCH_EQ_GAIN_NAMES, MixParams
from mixing.session import MixSession
from tests.signals import noise, sine

DURATION_S = 2.0


def session() -> MixSession:
    """Bass, pad and lead of distinct spectra; no compressor in the default strips."""
    audio = [sine(110.0, DURATION_S, amplitude=0.4), noise(DURATION_S, rms=0.05, channels=2, seed=1),
             sine(1000.0, DURATION_S, amplitude=0.1) + noise(DURATION_S, rms=0.01, seed=2)]
    return MixSession(Stems(["Bass", "Pad", "Lead"], audio, SAMPLE_RATE, []), None, device="cpu")


def detuned(params: MixParams, gains_db: dict[int, float]) -> MixParams:
    moved = copy.deepcopy(params)
    for index, offset_db in gains_db.items():
        moved.tracks[index]["gain_db"] += offset_db
    return moved


def gain_suggestions(advice) -> list:
    return [suggestion for suggestion in advice.suggestions if suggestion.kind == "gain"]


def test_a_track_detuned_by_minus_4_db_without_compressor_is_raised_4_db():
    target = MixParams.default(3)
    advice = advise(session(), detuned(target, {2: -4.0}), target)
    gains = gain_suggestions(advice)
    assert [suggestion.track for suggestion in gains] == [2]
    (change,) = gains[0].changes
    assert (change.track, change.param) == (2, "gain_db")
    assert change.value == pytest.approx(0.0, abs=0.1)
    assert "raise it 4.0 dB" in gains[0].text
    assert gains[0].effect == pytest.approx(4.0, abs=0.1)


def test_the_gain_solve_goes_through_the_compressor():
    target = MixParams.default(3)
    target.tracks[0].update(comp_threshold_db=-30.0, comp_ratio=4.0)
    current = detuned(target, {0: 6.0})
    engine = session()
    advice = advise(engine, current, target)
    (suggestion,) = gain_suggestions(advice)
    moved = apply(current, suggestion.changes)
    level_db = engine.renderer.track_levels(moved)[0]
    assert level_db == pytest.approx(advice.target_levels_db[0], abs=GAIN_TOLERANCE_DB)
    # Above threshold a 4:1 compressor passes a quarter of a fader move: levels moved less than the fader.
    assert abs(suggestion.changes[0].value - target.tracks[0]["gain_db"]) < 1.0


def test_the_larger_level_error_is_ranked_first():
    target = MixParams.default(3)
    advice = advise(session(), detuned(target, {0: 3.0, 2: -6.0}), target)
    gains = gain_suggestions(advice)
    assert [suggestion.track for suggestion in gains] == [2, 0]
    assert gains[0].effect > gains[1].effect


def test_applied_advice_leaves_no_gain_suggestion():
    target = MixParams.default(3)
    target.tracks[1].update(comp_threshold_db=-35.0, comp_ratio=3.0)
    engine = session()
    current = detuned(target, {0: -7.0, 1: 5.0, 2: 2.5})
    first = advise(engine, current, target)
    changes = [change for suggestion in gain_suggestions(first) for change in suggestion.changes]
    again = advise(engine, apply(current, changes), target)
    assert gain_suggestions(again) == []
    assert max(abs(a - b) for a, b in zip(again.levels_db, again.target_levels_db, strict=True)) < GAIN_MIN_DB


def test_the_same_params_give_no_advice_and_a_json_ready_report():
    target = MixParams.default(3)
    advice = advise(session(), copy.deepcopy(target), target)
    assert advice.suggestions == []
    report = json.loads(json.dumps(advice.to_dict(), allow_nan=False))
    assert len(report["band_db"]) == 3 and len(report["band_db"][0]) == len(report["band_centres_hz"])
    assert report["mix"]["af_loss"] == pytest.approx(0.0, abs=1e-6)


def band_db(*tracks: torch.Tensor) -> torch.Tensor:
    return band_levels_db(track_spectra(list(tracks), SAMPLE_RATE), SAMPLE_RATE)


def test_two_tones_in_one_bark_band_mask_and_distant_ones_do_not():
    lead = sine(1000.0, DURATION_S, amplitude=0.1)
    (found,) = find_masking(band_db(lead, sine(1020.0, DURATION_S, amplitude=0.1)), leads=[0])
    assert (found.masker, found.masked) == (1, 0)
    # Equal tones: the margin itself, less what the masker's 20 Hz off the band's peak costs it.
    assert 1.5 <= found.excess_db <= 3.0
    assert find_masking(band_db(lead, sine(6000.0, DURATION_S, amplitude=0.1)), leads=[0]) == []
    # A masker 20 dB down in the same band leaves the lead audible.
    assert find_masking(band_db(lead, sine(1020.0, DURATION_S, amplitude=0.01)), leads=[0]) == []


def test_a_masking_cut_sits_on_the_masker_where_the_lead_is():
    audio = [sine(1000.0, DURATION_S, amplitude=0.1), sine(1010.0, DURATION_S, amplitude=0.15)]
    engine = MixSession(Stems(["Lead", "Keys"], audio, SAMPLE_RATE, []), None, device="cpu")
    target = MixParams.default(2)
    target.tracks[1]["gain_db"] = 4.0  # the stems are trimmed to equal loudness: Keys then stands 4 dB over Lead
    advice = advise(engine, copy.deepcopy(target), target, leads=[0])
    (cut,) = [suggestion for suggestion in advice.suggestions if suggestion.kind == "masking"]
    assert cut.track == 1 and cut.text.startswith("Keys covers Lead")
    values = {change.param: change.value for change in cut.changes}
    freq_name = next(name for name in values if name.endswith("_freq_hz"))
    assert 900.0 <= values[freq_name] <= 1150.0
    gain_name = freq_name.replace("_freq_hz", "_gain_db")
    # 4 dB louder plus the 3 dB margin, in half-dB steps; the measured drop follows the cut.
    assert values[gain_name] == pytest.approx(-7.0, abs=0.75)
    assert 0.5 * abs(values[gain_name]) <= cut.effect <= abs(values[gain_name]) + 0.5


def test_master_gaps_to_the_target_become_width_tone_and_loudness_suggestions():
    target = MixParams.default(3)
    current = copy.deepcopy(target)
    band = 12
    current.master.update({"master_width_pct": 180.0, "master_loudness_lufs": -20.0, MATCH_EQ_GAIN_NAMES[band]: 8.0})
    advice = advise(session(), current, target)
    mix = [suggestion for suggestion in advice.suggestions if suggestion.effect_unit == "AF loss"]
    by_kind = {suggestion.kind: suggestion for suggestion in mix}
    assert set(by_kind) == {"width", "tone", "loudness"}
    assert all(suggestion.effect > 0 for suggestion in mix)
    assert [suggestion.effect for suggestion in mix] == sorted((s.effect for s in mix), reverse=True)
    # Width scales the side signal: 180 % puts side/mid 20 log10(1.8) = 5.1 dB up in every region.
    (width,) = by_kind["width"].changes
    assert (width.track, width.param) == (None, "master_width_pct")
    assert width.value == pytest.approx(100.0, abs=5.0)
    assert by_kind["width"].text.startswith("The mix is wider than the target")
    (loudness,) = by_kind["loudness"].changes
    assert loudness.value == pytest.approx(-14.0, abs=0.5)
    tone = {change.param: change.value for change in by_kind["tone"].changes}
    # The band's +8 dB reads about 5.5 dB in its bark band (neighbouring bands overlap; loudness is matched):
    # the move takes most of it back, measured after the width move.
    assert 0.0 <= tone[MATCH_EQ_GAIN_NAMES[band]] <= 4.0
    assert "more" in by_kind["tone"].text


def test_advice_with_a_memo_after_one_fader_move_equals_fresh_advice_and_measures_only_that_track():
    target = MixParams.default(3)
    target.tracks[1].update(comp_threshold_db=-35.0, comp_ratio=3.0)
    engine, memo = session(), AdviceMemo()
    advise(engine, detuned(target, {2: -4.0}), target, memo=memo)
    spectra_before = dict(memo.spectra)
    current = detuned(target, {0: 2.0, 2: -4.0})

    remembered = advise(engine, current, target, memo=memo)

    fresh = advise(session(), current, target)
    assert remembered.to_dict() == fresh.to_dict()
    # The gain moves solved for track 2 put it back at the target's settings either time; only track 0 is new.
    assert [key[0] for key in memo.spectra if key not in spectra_before] == [0]
