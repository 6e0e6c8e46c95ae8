"""Each preflight check on signals whose finding can be worked out by hand."""
import math

import pytest
import torch

from mixing import SAMPLE_RATE
from mixing.preflight import (
    LAG_DECIMATION,
    apply_fix,
    best_lag_correlation,
    clipped_runs,
    correlation_with_the_rest,
    dc_offset_dbfs,
    dual_mono_difference_db,
    leading_silence_s,
    preflight,
)
from tests.signals import noise, sine

RATE = SAMPLE_RATE


def checks(findings) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in findings:
        found.setdefault(finding.check, []).append(finding)
    return found


def names(count: int) -> list[str]:
    return [f"stem{i}.wav" for i in range(count)]


def test_clean_independent_stems_have_no_findings():
    stems = [noise(3.0, rms=0.1, seed=seed) for seed in range(4)]
    assert preflight(stems, names=names(4), sample_rate=RATE, source_sample_rates_hz=[RATE] * 4) == []


def test_a_flat_top_of_three_samples_is_one_clipped_run_and_a_single_full_scale_peak_is_none():
    audio = torch.zeros(2, 1000)
    audio[0, 100] = 1.0  # a normalized peak
    audio[0, 200:205] = 1.0  # 5 samples clipped positive
    audio[1, 300:303] = -1.0  # 3 clipped negative
    audio[1, 400:402] = -1.0  # 2: too short to call clipping
    assert clipped_runs(audio) == (2, 8)
    finding = checks(preflight([audio], names=["Drums.wav"], sample_rate=RATE))["clipping"][0]
    assert (finding.severity, finding.fix) == ("warning", None)
    assert finding.values == {"clipped_runs": 2, "clipped_samples": 8}
    assert "8 samples at full scale in 2 places" in finding.message


def test_a_dc_offset_of_a_tenth_reads_minus_20_dbfs_and_removing_it_leaves_the_sine():
    wave = sine(441.0, 2.0, amplitude=0.5)  # a whole number of periods: mean 0
    shifted = wave + 0.1
    assert dc_offset_dbfs(shifted) == pytest.approx(-20.0, abs=1e-3)
    finding = checks(preflight([shifted], names=["Bass.wav"], sample_rate=RATE))["dc_offset"][0]
    assert (finding.fix, finding.track) == ("remove_dc", 0)
    assert "-20.0 dBFS" in finding.message
    fixed = apply_fix(shifted, "remove_dc")
    assert torch.allclose(fixed, wave, atol=1e-6)
    assert "dc_offset" not in checks(preflight([fixed], names=["Bass.wav"], sample_rate=RATE))


def test_an_offset_below_minus_40_dbfs_is_left_alone():
    assert "dc_offset" not in checks(preflight([noise(2.0) + 0.005], names=["a.wav"], sample_rate=RATE))


def test_silent_and_near_silent_stems():
    quiet = sine(440.0, 2.0, amplitude=10 ** (-70 / 20))  # peak -70 dBFS
    found = checks(preflight([torch.zeros(1, RATE * 2), quiet, noise(2.0)], names=names(3), sample_rate=RATE))
    assert (found["silent"][0].track, found["silent"][0].fix) == (0, "delete_stem")
    near = found["near_silent"][0]
    assert near.tracks == (1,) and near.values["peak_dbfs"] == pytest.approx(-70.0, abs=0.01)
    assert len(found) == 2


def test_identical_channels_are_dual_mono_and_folding_keeps_the_signal():
    mono = noise(2.0, seed=3)
    stereo = mono.expand(2, -1).clone()
    assert dual_mono_difference_db(stereo) == -math.inf
    finding = checks(preflight([stereo], names=["Keys.wav"], sample_rate=RATE))["dual_mono"][0]
    assert (finding.fix, finding.track) == ("fold_to_mono", 0)
    folded = apply_fix(stereo, "fold_to_mono")
    assert folded.shape == (1, mono.shape[-1]) and torch.equal(folded, mono)


def test_channels_differing_by_minus_40_db_are_stereo():
    left = sine(440.0, 2.0, amplitude=0.5)
    right = left * (1 + 10 ** (-40 / 20))  # the difference peaks 40 dB below the stem's peak
    stereo = torch.cat([left, right])
    assert dual_mono_difference_db(stereo) == pytest.approx(-40.0, abs=0.1)
    assert "dual_mono" not in checks(preflight([stereo], names=["Pad.wav"], sample_rate=RATE))
    with pytest.raises(ValueError, match="only a stereo stem"):
        apply_fix(left, "fold_to_mono")


def test_lengths_and_late_starts():
    full = noise(10.0, seed=1)
    short = noise(7.0, seed=2)
    late = torch.cat([torch.zeros(1, round(2.5 * RATE)), noise(7.5, seed=4)], dim=1)
    assert leading_silence_s(late, RATE) == pytest.approx(2.5)
    found = checks(preflight([full, short, late], names=["Drums.wav", "Bass.wav", "Vox.wav"], sample_rate=RATE))
    assert found["length"][0].tracks == (1,)
    assert "Bass.wav (7.0 s)" in found["length"][0].message
    assert found["start_offset"][0].tracks == (2,)
    assert "Vox.wav after 2.5 s. Normal" in found["start_offset"][0].message


def test_only_the_first_five_late_stems_are_named():
    stems = [torch.cat([torch.zeros(1, 2 * RATE), noise(2.0, seed=seed)], dim=1) for seed in range(7)]
    finding = checks(preflight(stems, names=names(7), sample_rate=RATE))["start_offset"][0]
    assert finding.tracks == tuple(range(7))
    assert "stem4.wav after 2.0 s and 2 more." in finding.message


def test_mixed_sample_rates_name_the_odd_ones_out():
    stems = [noise(2.0, seed=seed) for seed in range(3)]
    finding = checks(preflight(stems, names=["a.wav", "b.wav", "c.wav"], sample_rate=RATE,
                               source_sample_rates_hz=[48000, 44100, 48000]))["sample_rate"][0]
    assert finding.tracks == (1,)
    assert "44.1 kHz (1), 48 kHz (2)" in finding.message


def test_an_inverted_copy_correlates_minus_one_and_the_later_one_is_deleted():
    snare = noise(3.0, seed=5)
    found = checks(preflight([snare, noise(3.0, seed=6), -snare], names=names(3), sample_rate=RATE))
    finding = found["inverted_duplicate"][0]
    assert finding.values["correlation"] == pytest.approx(-1.0, abs=1e-9)
    assert (finding.tracks, finding.fix, finding.track) == ((0, 2), "delete_stem", 2)
    assert "full_mix" not in found


def test_an_exact_copy_is_a_duplicate_and_a_half_inverted_one_only_a_note():
    a, b = noise(3.0, seed=7), noise(3.0, seed=8)
    # -a + b has correlation -1/sqrt(2) with a: opposed, not a copy.
    found = checks(preflight([a, a.clone(), -a + b], names=names(3), sample_rate=RATE))
    assert found["duplicate"][0].track == 1
    opposed = found["opposed_polarity"][0]
    assert opposed.tracks == (0, 2) and opposed.fix is None
    assert opposed.values["correlation"] == pytest.approx(-1 / math.sqrt(2), abs=0.01)


def test_the_full_mix_among_its_stems_is_found_even_when_it_starts_a_second_late():
    parts = [noise(6.0, seed=seed) for seed in range(3)]
    delay = torch.zeros(1, RATE)
    mix = torch.cat([delay, parts[0] + parts[1] + parts[2]], dim=1)
    found = checks(preflight([*parts, mix], names=names(4), sample_rate=RATE))
    [finding] = found["full_mix"]
    # Searched on block means of 32 samples, 44100 = 1378.125 blocks: white noise in blocks shifted by an
    # eighth of a block keeps 7/8 of its correlation.
    assert finding.track == 3 and finding.values["correlation"] == pytest.approx(0.875, abs=0.01)
    # Lags are searched in steps of 32 samples.
    assert finding.values["offset_s"] == pytest.approx(1.0, abs=32 / RATE)
    assert "once shifted by 1.0 s" in finding.message


def test_best_lag_correlation_finds_the_delay_and_rest_correlations_add_up():
    a = noise(1.0, seed=12)[0]
    delayed = torch.cat([torch.zeros(100), a])
    r, lag = best_lag_correlation(a, delayed)
    assert (round(r, 6), lag) == (1.0, 100)
    assert best_lag_correlation(delayed, a)[1] == -100
    assert best_lag_correlation(a, torch.zeros(10)) == (0.0, 0)
    # Three independent noises of equal power and their sum (held over blocks of LAG_DECIMATION, so that
    # coarse() keeps them): each against the other two plus the sum, a + 2b + 2c, correlates
    # 1 / sqrt(1 + 4 + 4) = 1/3; the sum against the parts, 1.
    parts = [torch.repeat_interleave(noise(0.5, seed=seed)[0], LAG_DECIMATION) for seed in (13, 14, 15)]
    rest = [r for r, _ in correlation_with_the_rest([*parts, sum(parts)])]
    assert rest == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0], abs=0.03)


def test_a_stem_that_is_the_reference_even_shifted_and_one_that_is_not():
    reference = noise(4.0, seed=9, channels=2)
    # Shifted by 16 coarse blocks (512 samples), so that the blocks line up again.
    shifted = torch.cat([torch.zeros(2, 512), reference], dim=1)
    found = checks(preflight([noise(4.0, seed=10), shifted], names=["a.wav", "song.wav"], sample_rate=RATE,
                             reference=reference))
    [finding] = found["is_reference"]
    assert finding.track == 1 and finding.values["correlation"] == pytest.approx(1.0, abs=1e-6)
    assert finding.values["offset_s"] == pytest.approx(512 / RATE)


def test_findings_come_most_serious_first_and_bad_input_is_refused():
    snare = noise(2.0, seed=11)
    findings = preflight([snare + 0.1, -snare - 0.1], names=names(2), sample_rate=RATE)
    assert [f.severity for f in findings] == ["problem", "warning", "warning"]
    with pytest.raises(ValueError, match="as many names"):
        preflight([snare], names=[], sample_rate=RATE)
    with pytest.raises(ValueError, match="unknown audio fix"):
        apply_fix(snare, "flip")
