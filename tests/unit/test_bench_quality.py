"""The quality benchmark (bench/quality.py) at its smallest size, so that it keeps running."""
import json
import math

import pytest
import torch

from bench.quality import (
    BALANCE_STARTS,
    NO_CHECKPOINT,
    balance_lines,
    clip_pairs,
    format_report,
    ground_truth,
    run_balance,
    run_clips,
    run_quality,
    summarize,
    summarize_clips,
)
from mixing import SAMPLE_RATE
from mixing.audio import Stems
from mixing.dsp.console import IncrementalRenderer
from mixing.expert import starting_params
from mixing.loudness import integrated_loudness_lufs, trim_tracks_to_input_level
from mixing.params import MixParams
from tests.signals import noise, sine

DURATION_S = 2.0
# "auto" without a checkpoint runs the same code as "fit"; leaving it out halves the test's time.
SMOKE_METHODS = ("equal-loudness", "controller", "fit")
# Two fits end to end (the master-EQ match alone is 150 optimizer steps each): several seconds.
pytestmark = pytest.mark.slow


def tiny_session(seed: int, num_stems: int) -> Stems:
    """A low tone, a mid tone over noise and stereo noise, at different raw levels."""
    audio = [
        sine(55.0 * (seed + 1), DURATION_S, amplitude=0.4),
        sine(440.0, DURATION_S, amplitude=0.05) + noise(DURATION_S, rms=0.01, seed=seed),
        noise(DURATION_S, rms=0.02, channels=2, seed=seed + 10),
    ][:num_stems]
    return Stems([f"Track {i + 1}" for i in range(num_stems)], audio, SAMPLE_RATE, [])


@pytest.fixture(scope="module")
def results():
    sessions = [tiny_session(0, 3), tiny_session(1, 2)]
    # Fitting's many tiny tensor ops crawl when two intra-op threads share a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_quality(sessions, cases=1, methods=SMOKE_METHODS, time_budget_s=None, iterations=2, device="cpu",
                           checkpoint=None)
    finally:
        torch.set_num_threads(threads)


def test_every_method_runs_on_both_case_types_and_controller_reports_missing_checkpoint(results):
    assert [(r.case_type, r.method) for r in results] == [(t, m) for t in ("a", "b") for m in SMOKE_METHODS]
    for result in results:
        if result.method == "controller":
            assert result.status == NO_CHECKPOINT
        else:
            assert result.status == "ok"
            assert math.isfinite(result.af_loss) and result.af_loss >= 0
            # Both bark conventions are reported, and they measure different things.
            assert math.isfinite(result.af_loss_fit_bark) and result.af_loss_fit_bark != result.af_loss


def test_same_song_case_reports_gain_and_level_errors_and_mrstft_other_song_case_does_not(results):
    for result in (r for r in results if r.status == "ok"):
        if result.case_type == "a":
            assert len(result.gain_error_raw_db) == 3 and len(result.level_error_db) == 3 and result.mrstft > 0
        else:
            assert result.gain_error_raw_db == [] and result.level_error_db == [] and result.mrstft is None


def level_errors_against_hidden(stems: Stems, settings) -> list[float]:
    """Case (a)'s level errors, computed here on their own: ``settings(tracks)`` on the trimmed second half
    of ``stems`` against P* (seed 0) on it, both relative to the raw stems, mean difference removed."""
    truth = ground_truth(stems, seed=0)
    half = stems.audio[0].shape[-1] // 2
    second = [a[:, half:] for a in stems.audio]
    tracks, trim_db = trim_tracks_to_input_level(second, SAMPLE_RATE)
    mixed = IncrementalRenderer(tracks, SAMPLE_RATE)
    mixed.render(settings(tracks))
    hidden = IncrementalRenderer([a * 10 ** (t / 20) for a, t in zip(second, truth.trim_db, strict=True)],
                                 SAMPLE_RATE)
    hidden.render(truth.params)
    differences = [(a - t) - (b - u) for a, t, b, u in zip(mixed.track_levels_db, trim_db, hidden.track_levels_db,
                                                             truth.trim_db, strict=True)]
    mean_db = sum(differences) / len(differences)
    return [abs(d - mean_db) for d in differences]


def test_equal_loudness_level_error_compares_track_levels_under_default_and_hidden_settings(results):
    expected = level_errors_against_hidden(tiny_session(0, 3), lambda tracks: MixParams.default(len(tracks)))
    equal = next(r for r in results if r.case_type == "a" and r.method == "equal-loudness")
    assert equal.level_error_db == pytest.approx(expected, abs=1e-3)


def test_equal_loudness_gain_error_is_that_of_gain_zero_against_the_hidden_gains(results):
    # The halves of stationary test signals trim like the whole stems, so the error is the hidden gain itself.
    truth = ground_truth(tiny_session(0, 3), seed=0)
    hidden_db = [row["gain_db"] for row in truth.params.tracks]
    equal = next(r for r in results if r.case_type == "a" and r.method == "equal-loudness")
    assert equal.gain_error_raw_db == pytest.approx([abs(g) for g in hidden_db], abs=0.2)
    mean_db = sum(hidden_db) / len(hidden_db)
    assert equal.gain_error_balance_db == pytest.approx([abs(g - mean_db) for g in hidden_db], abs=0.2)


def test_ground_truth_is_seeded_and_rendered_at_its_hidden_master_loudness():
    first, again = ground_truth(tiny_session(0, 3), seed=4), ground_truth(tiny_session(0, 3), seed=4)
    assert first.params.tracks == again.params.tracks
    assert first.mix.shape == (2, round(DURATION_S * SAMPLE_RATE))
    # The true-peak ceiling may only take a little off the target loudness.
    target_lufs = first.params.master["master_loudness_lufs"]
    assert target_lufs - 2.0 < integrated_loudness_lufs(first.mix, SAMPLE_RATE) < target_lufs + 0.5


def test_summary_sets_equal_loudness_as_the_unit_ratio_and_is_printable_and_json(results):
    summary = summarize(results)
    assert summary["equal-loudness"]["ratio_to_equal_loudness"] == pytest.approx(1.0)
    assert summary["controller"] == {"status": NO_CHECKPOINT}
    assert summary["fit"]["ratio_to_equal_loudness"] == pytest.approx(
        summary["fit"]["af_loss_mean"] / summary["equal-loudness"]["af_loss_mean"])
    assert summary["fit"]["ratio_to_equal_loudness_fit_bark"] == pytest.approx(
        summary["fit"]["af_loss_mean_fit_bark"] / summary["equal-loudness"]["af_loss_mean_fit_bark"])
    config = {"cases": 1, "stems": 3, "duration_s": DURATION_S, "device": "cpu", "time_budget_s": None,
              "iterations": 2}
    report = format_report(summary, config)
    assert all(method in report for method in SMOKE_METHODS) and NO_CHECKPOINT in report
    json.dumps(summary)


def test_clip_pairs_take_windows_loud_enough_in_each_song_and_are_seeded():
    # The mix is loud only after 20 s, the reference only before 10 s; quiet parts sit 60 dB down.
    loud, quiet = noise(10.0, rms=0.1, channels=2, seed=1), noise(20.0, rms=1e-4, channels=2, seed=2)
    mix, reference = torch.cat([quiet, loud], dim=-1), torch.cat([loud, quiet], dim=-1)
    window, pairs = clip_pairs(mix, reference, SAMPLE_RATE, count=6, clip_s=10.0, seed=3)
    assert window == 10 * SAMPLE_RATE and len(pairs) == 6
    # A window qualifies once a few per cent of it is loud: it must reach past 20 s (mix) or start before 10 s.
    assert all(m > 10 * SAMPLE_RATE and m % SAMPLE_RATE == 0 for m, _ in pairs)
    assert all(r < 10 * SAMPLE_RATE for _, r in pairs)
    assert clip_pairs(mix, reference, SAMPLE_RATE, count=6, clip_s=10.0, seed=3)[1] == pairs
    assert clip_pairs(mix, reference, SAMPLE_RATE, count=6, clip_s=10.0, seed=4)[1] != pairs



def test_each_clip_pair_is_mixed_on_its_own_and_scored_against_its_reference_clip():
    sessions = [tiny_session(0, 3), tiny_session(1, 2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clips = run_clips(sessions, cases=1, pairs=2, methods=("equal-loudness", "fit"), time_budget_s=None,
                          iterations=1, device="cpu", checkpoint=None)
    finally:
        torch.set_num_threads(threads)
    assert [(r.session, r.reference_session, r.method) for r in clips] == [(0, 1, "equal-loudness"), (0, 1, "fit")] * 2
    assert all(r.status == "ok" and math.isfinite(r.af_loss) and r.af_loss >= 0 for r in clips)
    # The clips are the whole 2 s sessions here, so the equal-loudness clip is scored like case (b)'s.
    whole = next(r for r in run_quality(sessions, cases=1, methods=("equal-loudness",), device="cpu",
                                        checkpoint=None) if r.case_type == "b")
    assert clips[0].af_loss == pytest.approx(whole.af_loss, rel=1e-4)
    summary = summarize_clips(clips)
    assert summary["equal-loudness"]["ratio_to_equal_loudness"] == pytest.approx(1.0)
    assert summary["fit"]["af_loss_mean"] == pytest.approx((clips[1].af_loss + clips[3].af_loss) / 2)
    config = {"cases": 1, "stems": 3, "duration_s": DURATION_S, "device": "cpu", "time_budget_s": None,
              "iterations": 1, "clip_pairs": 2}
    assert "Diff-MST's protocol" in format_report({}, config, clips=summary)


def test_balance_part_scores_each_start_against_the_hidden_levels():
    sessions = [tiny_session(0, 3), tiny_session(1, 2)]
    [result] = run_balance(sessions, cases=1, device="cpu")
    assert list(result.level_error_db) == list(BALANCE_STARTS)
    assert all(len(errors) == 3 and all(math.isfinite(e) for e in errors) for errors in result.level_error_db.values())
    expected = level_errors_against_hidden(
        sessions[0], lambda tracks: starting_params(tracks, SAMPLE_RATE, sessions[0].names))
    assert result.level_error_db["expert"] == pytest.approx(expected, abs=1e-3)
    table = "\n".join(balance_lines([result]))
    assert all(label in table for label in BALANCE_STARTS.values())
