"""Master matching: match EQ, width, balance, loudness and dynamics set on the whole song to meet a reference.

The reference is the same session rendered with a known master bus (shelving
EQ, width, balance), so an exact answer exists: the tests check that matching
finds it closely, never gets worse by the AF loss, reports what it did, and
leaves the track strips alone.
"""
import copy
import math

import pytest
import scipy.signal
import torch

import mixing.master_match as master_match_module
from mixing.dsp.console import IncrementalRenderer, render_mix
from mixing.dsp.stages import master_bus_after_dynamics
from mixing.features import MID_SIDE_FIT_BARK, stereo_imbalance, stereo_width
from mixing.losses import AudioFeatureLoss
from mixing.loudness import integrated_loudness_lufs, normalize_to_lufs, trim_tracks_to_input_level
from mixing.master_match import (
    BOTH_WAYS_MAX_S,
    DRIVE_PROBES,
    DYNAMICS_PROBES,
    DYNAMICS_STEP_DB,
    EXPANDER_BELOW_DB,
    EXPANDER_RATIO,
    EXPANDER_STEP_DB,
    LEFT_RIGHT_FALLBACK_STEP,
    LEVELLER,
    ROUND_FALLBACK_STEP,
    _matched_stereo,
    _power_spectra,
    match_master,
)
from mixing.params import BAND_WIDTH_NAMES, MASTER_SPECS, MATCH_EQ_GAIN_NAMES, MATCH_EQ_LR_NAMES, MixParams

SAMPLE_RATE = 44100
SECONDS = 6.0
ROUNDS = 3
# Each round that does not gain is rendered again at a shorter step.
ROUND_RENDERS = 2 * ROUNDS
# Each dynamics probe is rendered, then rendered again after a round re-matching to it.
DYNAMICS_RENDERS = 2 * DYNAMICS_PROBES
DYNAMICS_RENDERS_BOTH_WAYS = 2 * DYNAMICS_RENDERS
# The round whose EQ step models the loudness restored after it, two left/right rounds, the limiter drive's probes.
LAST_ROUND_RENDERS = 3 + DRIVE_PROBES
REFERENCE_MASTER = {
    "master_eq_low_shelf_gain_db": -5.0,
    "master_eq_high_shelf_gain_db": 6.0,
    "master_width_pct": 160.0,
    "master_balance_pct": -30.0,
}


def filtered_noise(channels: int, sos, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(channels, int(SECONDS * SAMPLE_RATE), generator=generator, dtype=torch.float64)
    return torch.from_numpy(scipy.signal.sosfilt(sos, noise.numpy()))


def session_tracks() -> list[torch.Tensor]:
    """Mono bass (low noise and an 82 Hz sine), wide mids (band noise), wide decaying hats (high noise), trimmed.

    Mono lows under wide highs: an EQ change moves the width feature too, as in real music.
    """
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(SECONDS * SAMPLE_RATE), dtype=torch.float64) / SAMPLE_RATE
    bass = filtered_noise(1, scipy.signal.butter(2, 300, "low", fs=SAMPLE_RATE, output="sos"), generator)
    bass = bass + 0.3 * torch.sin(2 * math.pi * 82.4 * t)
    mids = filtered_noise(2, scipy.signal.butter(2, [800, 4000], "band", fs=SAMPLE_RATE, output="sos"), generator)
    hats = filtered_noise(2, scipy.signal.butter(2, 5000, "high", fs=SAMPLE_RATE, output="sos"), generator)
    hats = hats * torch.exp(-20 * (t % 0.25))
    trimmed, _ = trim_tracks_to_input_level([track.float() for track in (bass, mids, hats)], SAMPLE_RATE)
    return trimmed


def comparison(audio: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """How far ``audio`` is from ``reference`` (both (2, samples)) at equal loudness, as matching measures it.

    ``bark_gap_db``: RMS over channels and bark bands of the level difference in dB;
    ``width_gap``, ``imbalance_gap``: the differences of those AF features; ``loss``: the AF loss with the mid/side
    bark spectrum that matching judges by; ``side_gap_db``: RMS over bark bands of the side's level difference
    less the mid's (the side-to-mid ratio's error).
    """
    loss_fn = AudioFeatureLoss(SAMPLE_RATE)
    side_loss_fn = AudioFeatureLoss(SAMPLE_RATE, bark=MID_SIDE_FIT_BARK)
    levelled, _ = normalize_to_lufs(audio, SAMPLE_RATE, integrated_loudness_lufs(reference, SAMPLE_RATE))
    mix, ref = loss_fn.features(levelled.unsqueeze(0)), loss_fn.features(reference.unsqueeze(0))
    gap_db = (mix["bark_spectrum"] - ref["bark_spectrum"]) * (20 / math.log(10))
    side_mix, side_ref = side_loss_fn.features(levelled.unsqueeze(0)), side_loss_fn.features(reference.unsqueeze(0))
    side_gap_db = (side_mix["bark_spectrum"] - side_ref["bark_spectrum"])[0] * (20 / math.log(10))
    return {
        "bark_gap_db": float(gap_db.square().mean().sqrt()),
        "width_gap": float(mix["stereo_width"] - ref["stereo_width"]),
        "imbalance_gap": float(mix["stereo_imbalance"] - ref["stereo_imbalance"]),
        "loss": float(side_loss_fn.compare(side_mix, side_ref)[0]),
        "side_gap_db": float((side_gap_db[1] - side_gap_db[0]).square().mean().sqrt()),
    }


@pytest.fixture(scope="module")
def matched():
    """One matching run toward the reference, with what went in and what it reported."""
    tracks = session_tracks()
    reference_params = MixParams.default(len(tracks))
    reference_params.master.update(REFERENCE_MASTER)
    reference = render_mix(tracks, reference_params, SAMPLE_RATE)
    start = MixParams.default(len(tracks))
    start_copy = copy.deepcopy(start)
    events = []
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    result = match_master(renderer, start, reference, rounds=ROUNDS, progress=events.append)
    return {
        "tracks": tracks, "reference": reference, "start": start, "start_copy": start_copy,
        "start_audio": render_mix(tracks, start, SAMPLE_RATE), "result": result, "events": events,
    }


def test_the_reference_is_far_from_the_start(matched):
    # Guards the other tests: each gap below must be there to be closed.
    before = comparison(matched["start_audio"], matched["reference"])
    assert before["bark_gap_db"] > 2.0 and abs(before["width_gap"]) > 0.5 and abs(before["imbalance_gap"]) > 0.1


def test_loss_never_rises_and_history_is_as_documented(matched):
    result = matched["result"]
    # 6 s: both ways.
    assert 1 <= len(result.history) <= ROUND_RENDERS + 1 + DYNAMICS_RENDERS_BOTH_WAYS + LAST_ROUND_RENDERS
    assert result.history[0] == result.start_loss
    assert result.loss == min(result.history) <= result.start_loss
    start_loss = comparison(matched["start_audio"], matched["reference"])["loss"]
    assert result.start_loss == pytest.approx(start_loss, rel=1e-4)
    # The reported loss is the returned render's.
    assert result.loss == pytest.approx(comparison(result.audio, matched["reference"])["loss"], rel=1e-4, abs=1e-7)


def test_bark_spectrum_gap_closes(matched):
    before = comparison(matched["start_audio"], matched["reference"])["bark_gap_db"]
    after = comparison(matched["result"].audio, matched["reference"])["bark_gap_db"]
    assert after < 0.2 * before, (before, after)
    assert matched["result"].loss < 0.05 * matched["result"].start_loss


def test_width_and_imbalance_reach_the_references(matched):
    before = comparison(matched["start_audio"], matched["reference"])
    after = comparison(matched["result"].audio, matched["reference"])
    assert abs(after["width_gap"]) < 0.05 * abs(before["width_gap"]), (before, after)
    assert abs(after["imbalance_gap"]) < 0.05 * abs(before["imbalance_gap"]), (before, after)
    # Same tracks: the reference's own width and balance settings are the exact answer.
    master = matched["result"].params.master
    assert master["master_width_pct"] == pytest.approx(REFERENCE_MASTER["master_width_pct"], abs=8.0)
    assert master["master_balance_pct"] == pytest.approx(REFERENCE_MASTER["master_balance_pct"], abs=2.0)


def test_only_master_bus_settings_move_and_the_input_is_untouched(matched):
    result, start = matched["result"], matched["start"]
    assert start == matched["start_copy"]
    assert result.params.tracks == start.tracks
    moved = {name for name in start.master if result.params.master[name] != start.master[name]}
    assert moved <= {*MATCH_EQ_GAIN_NAMES, *MATCH_EQ_LR_NAMES, *BAND_WIDTH_NAMES, "master_width_pct",
                     "master_balance_pct",
                     "master_loudness_lufs", "master_comp_threshold_db", *LEVELLER}
    assert "master_width_pct" in moved and "master_balance_pct" in moved
    for name in (*MATCH_EQ_GAIN_NAMES, *MATCH_EQ_LR_NAMES):
        spec = MASTER_SPECS[name]
        assert spec.min <= result.params.master[name] <= spec.max


def test_returned_audio_is_a_fresh_render_of_the_returned_params(matched):
    result = matched["result"]
    fresh = render_mix(matched["tracks"], result.params, SAMPLE_RATE)
    assert result.audio.shape == fresh.shape == (2, int(SECONDS * SAMPLE_RATE))
    torch.testing.assert_close(result.audio, fresh, atol=1e-6, rtol=0)


def test_progress_reports_each_render(matched):
    events, history = matched["events"], matched["result"].history
    assert len(events) == len(history)
    most_renders = ROUND_RENDERS + 1 + DYNAMICS_RENDERS_BOTH_WAYS + LAST_ROUND_RENDERS
    for round_, event in enumerate(events):
        assert set(event) == {"stage", "progress", "round", "loss"}
        assert event["stage"] == "matching" and event["round"] == round_ and event["loss"] == history[round_]
        assert event["progress"] == pytest.approx((round_ + 1) / most_renders)


def test_a_reference_identical_to_the_start_changes_nothing_that_matters():
    tracks = session_tracks()
    start = MixParams.default(len(tracks))
    start.master["master_eq_band3_gain_db"] = 4.0  # not a flat mix, so flatness is not what is kept
    reference = render_mix(tracks, start, SAMPLE_RATE)
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=2)
    assert result.start_loss < 1e-6
    assert result.loss <= result.start_loss
    after = comparison(result.audio, reference)
    assert after["bark_gap_db"] < 0.05 and abs(after["width_gap"]) < 1e-3 and abs(after["imbalance_gap"]) < 1e-3
    assert result.params.tracks == start.tracks
    assert result.params.master["master_width_pct"] == pytest.approx(100.0, abs=0.5)
    assert result.params.master["master_balance_pct"] == pytest.approx(0.0, abs=0.5)
    assert max(abs(result.params.master[name]) for name in MATCH_EQ_GAIN_NAMES) < 0.1


def test_zero_rounds_measures_the_start_only():
    tracks = session_tracks()
    start = MixParams.default(len(tracks))
    reference = 0.5 * render_mix(tracks, start, SAMPLE_RATE).flip(0)
    events = []
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=0, level_dynamics=False,
                          progress=events.append)
    assert result.params == start
    assert result.history == [result.start_loss] and result.loss == result.start_loss
    assert [event["progress"] for event in events] == [1.0]
    torch.testing.assert_close(result.audio, render_mix(tracks, start, SAMPLE_RATE), atol=1e-6, rtol=0)


def test_a_limited_mix_is_driven_until_it_is_as_loud_as_the_reference():
    # A reference mastered hot: its ceiling took loudness off, so a mix set to the loudness the reference
    # measures comes out quieter after its own ceiling, until matching drives it harder.
    tracks = session_tracks()
    hot = MixParams.default(len(tracks))
    hot.master["master_loudness_lufs"] = -7.0
    reference = render_mix(tracks, hot, SAMPLE_RATE)
    ref_lufs = integrated_loudness_lufs(reference, SAMPLE_RATE)
    start = MixParams.default(len(tracks))
    start.master["master_loudness_lufs"] = ref_lufs
    start_lufs = integrated_loudness_lufs(render_mix(tracks, start, SAMPLE_RATE), SAMPLE_RATE)
    assert ref_lufs - start_lufs > 0.5  # the ceiling does take loudness off
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=ROUNDS)
    assert integrated_loudness_lufs(result.audio, SAMPLE_RATE) == pytest.approx(ref_lufs, abs=0.25)
    assert result.params.master["master_loudness_lufs"] > ref_lufs



def test_a_reference_limited_harder_is_matched_with_the_limiter_drive():
    # The same mix at the same loudness under a ceiling 4 dB lower: at the reference's loudness the start's
    # -1 dBTP ceiling leaves its crest factor higher, which no loudness round can change.
    tracks = session_tracks()
    limited = MixParams.default(len(tracks))
    limited.master["master_ceiling_dbtp"] = -5.0
    reference = render_mix(tracks, limited, SAMPLE_RATE)
    start = MixParams.default(len(tracks))
    loss_fn = AudioFeatureLoss(SAMPLE_RATE)

    def crest_gap_db(audio):
        return float((loss_fn.features(audio.unsqueeze(0))["crest_factor_db"]
                      - loss_fn.features(reference.unsqueeze(0))["crest_factor_db"]).abs().mean())

    start_gap_db = crest_gap_db(render_mix(tracks, start, SAMPLE_RATE))
    assert start_gap_db > 2.0
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=ROUNDS,
                          level_dynamics=False)
    assert result.params.master["master_limiter_drive_db"] > 2.0
    assert crest_gap_db(result.audio) < start_gap_db / 2


def test_the_last_round_closes_a_gap_common_to_all_bands():
    # The reference is the start's own mix gated on and off every quarter second: at the same loudness its mean
    # spectrum sits about 3 dB lower in every band (half the time at sqrt(2) times the level), a gap no EQ shape
    # closes, because the loudness restored after the EQ undoes any change common to all bands.
    tracks = session_tracks()
    start = MixParams.default(len(tracks))
    steady = render_mix(tracks, start, SAMPLE_RATE)
    seconds = torch.arange(steady.shape[-1]) / SAMPLE_RATE
    reference = steady * ((seconds % 0.5) < 0.25).float()

    def common_gap_db(audio: torch.Tensor) -> float:
        loss_fn = AudioFeatureLoss(SAMPLE_RATE)
        levelled, _ = normalize_to_lufs(audio, SAMPLE_RATE, integrated_loudness_lufs(reference, SAMPLE_RATE))
        gap = loss_fn.features(levelled.unsqueeze(0))["bark_spectrum"] - loss_fn.features(
            reference.unsqueeze(0))["bark_spectrum"]
        return float(gap.mean()) * 20 / math.log(10)

    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=ROUNDS,
                          level_dynamics=False)
    assert common_gap_db(steady) > 2.0
    assert abs(common_gap_db(result.audio)) < 0.25 * common_gap_db(steady)
    # The gain is the loudness-modelled round's: neither the first round nor its shorter step could lower the loss,
    # which ends the rounds, so the fourth render is that round's (the left/right rounds follow it). Judged with the
    # mid/side bark spectrum it gains about 9 % (the width feature, met on energy, leaves the side's bark level a
    # little high).
    assert min(result.history[1:3]) >= result.history[0]
    assert result.loss <= result.history[3] < 0.95 * min(result.history[:3])
    assert result.params.tracks == start.tracks


def test_the_left_right_round_closes_a_tonal_gap_between_the_channels():
    # The reference is the start's own mix with its left channel's highs 2 dB up and its right channel's
    # 2 dB down (the highs added back, as a master with a brighter left would make): one curve for both
    # channels cannot follow that, the left/right gains can.
    tracks = session_tracks()
    start = MixParams.default(len(tracks))
    steady = render_mix(tracks, start, SAMPLE_RATE)
    highpass = scipy.signal.iirfilter(2, 2000.0, btype="highpass", ftype="butter", fs=SAMPLE_RATE, output="sos")
    highs = torch.from_numpy(scipy.signal.sosfilt(highpass, steady.double().numpy(), axis=-1)).float()
    tilt = torch.tensor([[10 ** (2 / 20) - 1], [10 ** (-2 / 20) - 1]])
    reference = steady + tilt * highs

    def left_right_gap_db(audio: torch.Tensor) -> float:
        loss_fn = AudioFeatureLoss(SAMPLE_RATE)
        gap = loss_fn.features(audio.unsqueeze(0))["bark_spectrum"] - loss_fn.features(
            reference.unsqueeze(0))["bark_spectrum"]
        lr = (gap[0, 0] - gap[0, 1]) * 20 / math.log(10)
        return float(lr.abs().mean())

    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=ROUNDS,
                          level_dynamics=False)
    assert left_right_gap_db(steady) > 1.0  # the mean over all bands, lows included
    assert left_right_gap_db(result.audio) < 0.25 * left_right_gap_db(steady)
    # The gain is the left/right rounds' (the second ends them if it does not gain).
    assert result.loss == min(result.history[-2:]) < 0.9 * min(result.history[:-2])
    lr_db = [result.params.master[name] for name in MATCH_EQ_LR_NAMES]
    # Brighter left: the high bands' left/right gains sit about 4 dB over the low bands' (the balance stage
    # takes up the overall lean to the left, so the low bands need not be at 0).
    assert 2.5 < sum(lr_db[-6:]) / 6 - sum(lr_db[:4]) / 4 < 5.5

    mono = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=ROUNDS,
                        level_dynamics=False, match_stereo=False)
    assert all(mono.params.master[name] == 0.0 for name in MATCH_EQ_LR_NAMES)


def test_a_levelled_reference_is_matched_by_levelling_the_master_compressor():
    # The reference rides a quiet first third up with a slow master compressor two dynamics steps below the
    # start's threshold; EQ, width and balance cannot reproduce that, the compressor can.
    envelope = torch.ones(int(SECONDS * SAMPLE_RATE))
    envelope[: envelope.numel() // 3] = 0.1
    tracks = [track * envelope for track in session_tracks()]
    start = MixParams.default(len(tracks))
    start.master.update(master_comp_threshold_db=-20.0, master_comp_ratio=1.0)
    levelled = copy.deepcopy(start)
    levelled.master.update(master_comp_threshold_db=-20.0 - 2 * DYNAMICS_STEP_DB, **LEVELLER)
    reference = render_mix(tracks, levelled, SAMPLE_RATE)

    # Mono matching: the left/right rounds, which end at the first that does not gain, would make the count of
    # renders below depend on more than the dynamics.
    without = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, level_dynamics=False,
                           match_stereo=False)
    # Probed the one way the gap points (as songs longer than BOTH_WAYS_MAX_S are).
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, both_ways_max_s=0.0,
                          match_stereo=False)
    assert without.params.master["master_comp_ratio"] == 1.0
    assert result.params.master["master_comp_threshold_db"] == pytest.approx(-20.0 - 2 * DYNAMICS_STEP_DB)
    assert {name: result.params.master[name] for name in LEVELLER} == LEVELLER
    assert result.loss < 0.1 * without.loss, (without.loss, result.loss)
    # One step helped, so the second probe went to two, the reference's setting: every probe ran.
    assert len(result.history) == len(without.history) + DYNAMICS_RENDERS


def test_a_more_dynamic_reference_is_matched_with_the_expander():
    # The reference lowers a quieter first third further with the master expander at the second probe's
    # setting (its threshold one step above the first's); levelling goes the wrong way, and EQ, width and
    # balance cannot reproduce it.
    envelope = torch.ones(int(SECONDS * SAMPLE_RATE))
    envelope[: envelope.numel() // 3] = 0.3
    tracks = [track * envelope for track in session_tracks()]
    start = MixParams.default(len(tracks))
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    renderer.render(start)
    bus_lufs = start.master["master_loudness_lufs"] - renderer.loudness_gain_db
    expanded = copy.deepcopy(start)
    expanded.master.update(master_expander_threshold_db=bus_lufs - EXPANDER_BELOW_DB + EXPANDER_STEP_DB,
                           master_expander_ratio=EXPANDER_RATIO)
    reference = render_mix(tracks, expanded, SAMPLE_RATE)

    without = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, level_dynamics=False)
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, both_ways_max_s=0.0)
    assert result.params.master["master_expander_ratio"] == pytest.approx(expanded.master["master_expander_ratio"])
    assert result.params.master["master_expander_threshold_db"] == pytest.approx(
        expanded.master["master_expander_threshold_db"], abs=0.1)
    assert result.params.master["master_comp_ratio"] == start.master["master_comp_ratio"]  # no levelling
    assert result.loss < 0.1 * without.loss, (without.loss, result.loss)
    # The limiter drive's probes run only where the crest factor is MIN_DRIVE_GAP_DB or more off, which the
    # expander changes: either run may have them.
    extra = len(result.history) - len(without.history) - DYNAMICS_RENDERS
    assert extra in (-DRIVE_PROBES, 0, DRIVE_PROBES)


@pytest.mark.parametrize("reference_dynamics", ["levelled", "expanded"])
def test_short_material_is_probed_both_ways_and_the_better_way_wins(reference_dynamics):
    envelope = torch.ones(int(SECONDS * SAMPLE_RATE))
    envelope[: envelope.numel() // 3] = 0.3
    tracks = [track * envelope for track in session_tracks()]
    start = MixParams.default(len(tracks))
    start.master.update(master_comp_threshold_db=-20.0, master_comp_ratio=1.0)
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    renderer.render(start)
    target = copy.deepcopy(start)
    if reference_dynamics == "levelled":
        target.master.update(master_comp_threshold_db=-20.0 - 2 * DYNAMICS_STEP_DB, **LEVELLER)
    else:
        target.master.update(
            master_expander_threshold_db=start.master["master_loudness_lufs"] - renderer.loudness_gain_db
            - EXPANDER_BELOW_DB + EXPANDER_STEP_DB, master_expander_ratio=EXPANDER_RATIO)
    reference = render_mix(tracks, target, SAMPLE_RATE)

    without = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, level_dynamics=False)
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference)
    assert SECONDS <= BOTH_WAYS_MAX_S
    # More renders than one way can take; the wrong way stops after its first probe and the weaker one.
    assert DYNAMICS_RENDERS < len(result.history) - len(without.history) <= DYNAMICS_RENDERS_BOTH_WAYS
    for name in ("master_comp_threshold_db", "master_comp_ratio", "master_expander_ratio"):
        assert result.params.master[name] == pytest.approx(target.master[name], abs=0.1), name
    assert result.loss < 0.1 * without.loss, (without.loss, result.loss)


@pytest.mark.parametrize("left_right_db", [0.0, 3.0])
def test_width_and_balance_are_solved_together_on_a_lopsided_mix(left_right_db):
    # Tracks panned right, so the side signal carries much of the lean: width moves the imbalance and balance
    # moves the width feature. Rendered at one width and balance and asked for the features that another
    # setting gives (with the high bands' left/right gains moved too, which act before both), the solve must
    # find that other setting.
    tracks = session_tracks()
    mix_params = MixParams.default(len(tracks))
    for row, pan_pct in zip(mix_params.tracks, (60.0, 80.0, 30.0), strict=True):
        row["pan_pct"] = pan_pct
    mix_params.master.update(master_width_pct=100.0, master_balance_pct=0.0)
    before_master = render_mix(tracks, mix_params, SAMPLE_RATE)[None]

    def master_after(master: dict) -> torch.Tensor:
        return master_bus_after_dynamics(before_master, SAMPLE_RATE,
                                         {name: torch.tensor([value]) for name, value in master.items()})

    old = {**mix_params.master, "master_width_pct": 130.0, "master_balance_pct": -20.0}
    wanted = {**old, "master_width_pct": 70.0, "master_balance_pct": 45.0,
              **{name: left_right_db for name in MATCH_EQ_LR_NAMES[12:]}}
    new = {**wanted, "master_width_pct": old["master_width_pct"], "master_balance_pct": old["master_balance_pct"]}
    n_fft = AudioFeatureLoss(SAMPLE_RATE).n_fft
    target = master_after(wanted)
    width_pct, balance_pct = _matched_stereo(
        _power_spectra(master_after(old)[0], n_fft), old, new, float(stereo_width(target)[0]),
        float(stereo_imbalance(target)[0]), SAMPLE_RATE, n_fft)
    assert float(stereo_imbalance(target)[0]) > 0.5  # lopsided: over three times the power on the right
    assert width_pct == pytest.approx(70.0, abs=0.5)
    assert balance_pct == pytest.approx(45.0, abs=0.5)


def test_a_left_right_step_that_overshoots_is_retried_at_part_of_its_length(monkeypatch):
    # A left/right tonal gap (the highs 1 dB up on the left, 1 dB down on the right), with every left/right step
    # made 3 times too long by this test: the full step leaves the gap twice as large and reversed, the fallback
    # share of it half as large, reversed.
    tracks = session_tracks()
    start = MixParams.default(len(tracks))
    steady = render_mix(tracks, start, SAMPLE_RATE)
    highpass = scipy.signal.iirfilter(2, 2000.0, btype="highpass", ftype="butter", fs=SAMPLE_RATE, output="sos")
    highs = torch.from_numpy(scipy.signal.sosfilt(highpass, steady.double().numpy(), axis=-1)).float()
    reference = steady + torch.tensor([[10 ** (1 / 20) - 1], [10 ** (-1 / 20) - 1]]) * highs
    shares = []
    too_long = master_match_module._match_eq_lr_gains

    def overshooting(*args, share, **kwargs):
        shares.append(share)
        return too_long(*args, share=3.0 * share, **kwargs)

    monkeypatch.setattr(master_match_module, "_match_eq_lr_gains", overshooting)
    # Band widths, width and balance held: this test is about the left/right rounds. (Let free, the balance
    # follows the reference's lean, which the mid/side judge sees as side signal all over the spectrum: the
    # first round gets worse, the start stays best and no left/right round gains.)
    monkeypatch.setattr(master_match_module, "_band_widths",
                        lambda master, *args, **kwargs: {name: master[name] for name in BAND_WIDTH_NAMES})
    monkeypatch.setattr(master_match_module, "_matched_stereo",
                        lambda powers, old, *args: (old["master_width_pct"], old["master_balance_pct"]))
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=ROUNDS,
                          level_dynamics=False)
    assert shares == [1.0, LEFT_RIGHT_FALLBACK_STEP]
    before_left_right = min(result.history[:-2])
    assert result.history[-2] > before_left_right  # the full step made things worse
    assert result.loss == result.history[-1] < 0.5 * before_left_right


def test_a_round_whose_full_step_overshoots_keeps_a_shorter_one(monkeypatch):
    # The reference is the start's mix with the master's high shelf 4 dB up, and every match EQ step is made 3
    # times too long by this test: the first round's full step leaves the bark gap twice as large and reversed,
    # ROUND_FALLBACK_STEP of it (1.5 times the right step) half as large, reversed. The band widths, which this
    # reference leaves as they were (the same EQ on mid and side), are asked for the same shares.
    tracks = session_tracks()
    start = MixParams.default(len(tracks))
    brighter = copy.deepcopy(start)
    brighter.master["master_eq_high_shelf_gain_db"] = 4.0
    reference = render_mix(tracks, brighter, SAMPLE_RATE)
    eq_steps, width_shares = [], []
    too_long, band_widths = master_match_module._match_eq_gains, master_match_module._band_widths

    def overshooting(*args, share=1.0, **kwargs):
        gains = too_long(*args, share=3.0 * share, **kwargs)
        eq_steps.append((share, gains))
        return gains

    def recorded(*args, share=1.0, **kwargs):
        width_shares.append(share)
        return band_widths(*args, share=share, **kwargs)

    monkeypatch.setattr(master_match_module, "_match_eq_gains", overshooting)
    monkeypatch.setattr(master_match_module, "_band_widths", recorded)
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=1,
                          level_dynamics=False)
    assert [share for share, _ in eq_steps[:2]] == width_shares[:2] == [1.0, ROUND_FALLBACK_STEP]
    (_, full), (_, shorter) = eq_steps[:2]
    for name in MATCH_EQ_GAIN_NAMES:  # from the same start, the same step at half its length
        assert shorter[name] == pytest.approx(ROUND_FALLBACK_STEP * full[name], abs=1e-9)
    assert max(full.values()) > 6.0  # the high bands' 4 dB, tripled, less the mean that centring takes off
    start_loss, full_loss, shorter_loss = result.history[:3]
    assert full_loss > start_loss  # the full step made things worse
    assert shorter_loss < 0.5 * start_loss  # the gap half as large
    # Kept: the loudness-modelled round after it overshoots too (its step is also tripled), and the left/right
    # rounds and the limiter drive leave the curve alone.
    for name in MATCH_EQ_GAIN_NAMES:
        assert result.params.master[name] == pytest.approx(shorter[name], abs=1e-9)
    assert result.loss <= shorter_loss


def test_a_reference_narrower_at_the_top_is_matched_by_the_band_widths():
    # The same tracks with the bands from 2.3 kHz up at half width: one global width cannot follow (it would
    # narrow the mids too), the multiband width can. The exact answer: every band's effective width (global
    # times band) at the reference's, wherever the band holds side signal (the mono bass's bands hold little).
    tracks = session_tracks()
    reference_params = MixParams.default(len(tracks))
    narrow_from = 14
    reference_params.master.update({name: 50.0 for name in BAND_WIDTH_NAMES[narrow_from:]})
    reference = render_mix(tracks, reference_params, SAMPLE_RATE)
    start = MixParams.default(len(tracks))
    result = match_master(IncrementalRenderer(tracks, SAMPLE_RATE), start, reference, rounds=ROUNDS,
                          level_dynamics=False)
    before = comparison(render_mix(tracks, start, SAMPLE_RATE), reference)
    after = comparison(result.audio, reference)
    assert before["side_gap_db"] > 3.0
    assert after["side_gap_db"] < 0.1 * before["side_gap_db"], (before, after)
    master = result.params.master
    effective_pct = [master["master_width_pct"] * master[name] / 100.0 for name in BAND_WIDTH_NAMES]
    for band in range(4, len(BAND_WIDTH_NAMES)):
        wanted_pct = 50.0 if band >= narrow_from else 100.0
        # Bands next to the step share its interpolation with their neighbours.
        if abs(band - narrow_from) > 1:
            assert effective_pct[band] == pytest.approx(wanted_pct, rel=0.08), (band, effective_pct)
