"""The analysis report: its shape, its numbers and its plain-language readings."""
import json
import math
import re

import pytest
import torch

from mixing import SAMPLE_RATE, features
from mixing.analysis import (
    ENVELOPE_POINTS,
    SPECTRUM_WINDOWS,
    analyse,
    level_at_gain,
    measure_signals,
    spectrum_windows,
    track_level_basis,
)
from mixing.loudness import integrated_loudness_lufs
from tests.signals import noise, sine

DURATION_S = 4.0
FEATURE_KEYS = {"rms", "crest_factor_db", "stereo_width", "stereo_imbalance", "bark_spectrum_db",
                "side_bark_spectrum_db"}
LOSS_KEYS = {"total", "rms", "crest_factor", "stereo_width", "stereo_imbalance", "bark_spectrum"}


def song(seed: int = 0) -> torch.Tensor:
    """A stereo 'song': partly correlated noise (a centre and two sides) over a bass sine."""
    centre = noise(DURATION_S, rms=0.08, seed=seed)
    sides = noise(DURATION_S, rms=0.04, channels=2, seed=seed + 100)
    return centre + sides + sine(70.0, DURATION_S, amplitude=0.1)


def reading(report: dict, word: str) -> str:
    """The one reading that mentions ``word``."""
    found = [sentence for sentence in report["readings"] if word in sentence]
    assert len(found) == 1, report["readings"]
    return found[0]


def test_report_has_the_api_shape_and_is_strict_json():
    tracks = [noise(DURATION_S, rms=0.05, seed=1), torch.zeros(2, round(DURATION_S * SAMPLE_RATE))]
    report = analyse(song(0), song(1), SAMPLE_RATE, baseline=song(2), tracks=tracks, track_names=["Noise", "Silent"],
                     track_ids=["id-1", "id-2"])
    assert set(report) == {"features", "af_loss", "readings", "loudness_lufs", "true_peak_dbtp", "track_levels"}
    for name in ("mix", "reference", "baseline"):
        assert set(report["features"][name]) == FEATURE_KEYS
        assert len(report["features"][name]["bark_spectrum_db"]) == features.N_BARK_BANDS
    for name in ("mix", "baseline"):
        loss = report["af_loss"][name]
        assert set(loss) == LOSS_KEYS
        assert loss["total"] == pytest.approx(sum(value for key, value in loss.items() if key != "total"))
    assert len(report["readings"]) == 7
    levels = report["track_levels"]
    assert [(level["stem"], level["name"]) for level in levels] == [("id-1", "Noise"), ("id-2", "Silent")]
    assert all(len(level["envelope_db"]) == ENVELOPE_POINTS for level in levels)
    assert levels[1]["loudness_lufs"] is None and set(levels[1]["envelope_db"]) == {-120.0}
    json.dumps(report, allow_nan=False)


def test_signals_measured_before_give_the_same_report_as_measuring_them_again():
    tracks = [noise(DURATION_S, rms=0.05, seed=1)]
    fresh = analyse(song(0), song(1), SAMPLE_RATE, baseline=song(2), tracks=tracks)
    known = measure_signals({"reference": song(1), "baseline": song(2)}, SAMPLE_RATE)
    # The reference and baseline audio are not read when their measurements are given.
    reused = analyse(song(0), torch.zeros(2, 10), SAMPLE_RATE, baseline=None, tracks=tracks, measured=known)
    assert reused == fresh
    with pytest.raises(ValueError, match="expected mix, reference or baseline"):
        analyse(song(0), song(1), SAMPLE_RATE, measured={"track": {}})


def test_measurements_agree_with_the_library_meters():
    mix = song(0)
    report = analyse(mix, song(1), SAMPLE_RATE)
    assert report["loudness_lufs"]["mix"] == pytest.approx(integrated_loudness_lufs(mix, SAMPLE_RATE))
    mix_features = report["features"]["mix"]
    assert mix_features["rms"] == pytest.approx(float(features.rms(mix[None]).mean()), rel=1e-5)
    assert mix_features["stereo_width"] == pytest.approx(float(features.stereo_width(mix[None])), rel=1e-5)
    assert report["features"]["baseline"] is None and report["af_loss"]["baseline"] is None
    assert report["loudness_lufs"]["baseline"] is None and report["track_levels"] == []


def test_a_full_scale_sine_reads_0_to_7_db_in_its_bark_band_and_has_no_side():
    # 0 dB when it sits on a bin; elsewhere the rectangular window's leakage adds up to about 7 dB.
    for freq_hz in (SAMPLE_RATE / features.PAPER_BARK.n_fft * 743, 1000.0, 5000.0):
        tone = sine(freq_hz, 20.0, amplitude=1.0, channels=2)
        mix = analyse(tone, tone, SAMPLE_RATE)["features"]["mix"]
        assert -1.0 < max(mix["bark_spectrum_db"]) < 7.5
        assert max(mix["side_bark_spectrum_db"]) < -200.0


def test_the_side_spectrum_reads_a_signal_in_one_channel_like_the_mid():
    tone = sine(1000.0, 2.0, amplitude=1.0)
    left_only = torch.cat([tone, torch.zeros_like(tone)])
    both = analyse(tone.expand(2, -1), tone.expand(2, -1), SAMPLE_RATE)["features"]["mix"]["bark_spectrum_db"]
    mix = analyse(left_only, left_only, SAMPLE_RATE)["features"]["mix"]
    assert mix["side_bark_spectrum_db"] == pytest.approx(mix["bark_spectrum_db"], abs=1e-3)
    # One channel makes half the mid of the same sine in both: 6.02 dB less in every band that holds it.
    assert max(mix["bark_spectrum_db"]) == pytest.approx(max(both) - 20 * math.log10(2), abs=0.01)


def test_the_mix_against_itself_has_zero_loss_and_matches_on_every_dimension():
    mix = song(0)
    report = analyse(mix, mix.clone(), SAMPLE_RATE)
    assert report["af_loss"]["mix"]["total"] == pytest.approx(0.0, abs=1e-9)
    assert all(re.search(r"match(es)? the reference", sentence) for sentence in report["readings"]), report["readings"]


def test_a_mono_collapsed_mix_reads_narrower():
    reference = song(0)
    mono = reference.mean(dim=0, keepdim=True).expand(2, -1)
    assert "narrower" in reading(analyse(mono, reference, SAMPLE_RATE), "side/centre")


def test_a_mono_reference_reads_as_setting_no_stereo_field_to_match():
    mono_reference = song(0).mean(dim=0, keepdim=True).expand(2, -1)
    report = analyse(song(1), mono_reference, SAMPLE_RATE)
    assert "sets no stereo width" in reading(report, "mono")
    assert not [sentence for sentence in report["readings"] if "side/centre" in sentence or "leans" in sentence]


def test_a_left_heavy_mix_reads_leaning_left_and_a_right_heavy_one_right():
    reference = song(0)
    left_heavy = reference * torch.tensor([[1.0], [0.5]])
    assert "leans left" in reading(analyse(left_heavy, reference, SAMPLE_RATE), "leans")
    assert "leans right" in reading(analyse(reference, left_heavy, SAMPLE_RATE), "leans")


def test_a_clipped_mix_reads_more_compressed_with_both_crest_factors():
    reference = song(0)
    clipped = torch.tanh(reference * 8.0) / 8.0
    sentence = reading(analyse(clipped, reference, SAMPLE_RATE), "crest factor")
    assert sentence.startswith("Your mix is more compressed (crest factor ")


def test_a_quieter_mix_reads_quieter():
    reference = song(0)
    assert "quieter" in reading(analyse(reference * 0.5, reference, SAMPLE_RATE), "LUFS")


def test_extra_bass_reads_more_low_end_and_a_lowpass_less_top_end():
    reference = song(0)
    boomy = reference + sine(60.0, DURATION_S, amplitude=0.5, channels=2)
    assert "more low end" in reading(analyse(boomy, reference, SAMPLE_RATE), "low end")
    dull = torch.nn.functional.avg_pool1d(reference.unsqueeze(0), 16, stride=1, padding=8)[0, :, : reference.shape[-1]]
    assert "less top end" in reading(analyse(dull, reference, SAMPLE_RATE), "top end")


def test_a_silent_mix_reads_silent_and_reports_no_loudness():
    reference = song(0)
    report = analyse(torch.zeros_like(reference), reference, SAMPLE_RATE)
    assert report["readings"][0] == "Your mix is silent."
    assert report["loudness_lufs"]["mix"] is None and report["true_peak_dbtp"]["mix"] is None
    json.dumps(report, allow_nan=False)


def test_long_signals_are_spread_over_windows_and_short_ones_taken_whole():
    short = noise(5.0, channels=2)
    assert spectrum_windows(short, SAMPLE_RATE).shape == (1, 2, short.shape[-1])
    long = torch.arange(60 * SAMPLE_RATE, dtype=torch.float32).expand(2, -1)
    windows = spectrum_windows(long, SAMPLE_RATE)
    assert windows.shape[0] == SPECTRUM_WINDOWS
    assert windows[0, 0, 0] == 0 and windows[-1, 0, -1] == long.shape[-1] - 1


def test_the_windowed_bark_spectrum_of_a_steady_signal_is_close_to_the_whole_signal_one():
    steady = noise(40.0, rms=0.1, channels=2, seed=3) + sine(200.0, 40.0, amplitude=0.2, channels=2)
    windowed = analyse(steady, steady, SAMPLE_RATE)["features"]["mix"]["bark_spectrum_db"]
    mid = features.bark_spectrum(steady[None], SAMPLE_RATE, convention=features.PAPER_BARK)[0, 0]
    whole = 20 * torch.log10(mid.exp())
    offset = whole - torch.tensor(windowed)  # the display scale is a constant offset
    assert float(offset.max() - offset.min()) < 0.3


def test_track_level_envelope_follows_the_level():
    quiet_then_loud = torch.cat([0.01 * torch.ones(1, SAMPLE_RATE), 0.1 * torch.ones(1, SAMPLE_RATE)], dim=1)
    level = level_at_gain(track_level_basis(quiet_then_loud, SAMPLE_RATE, points=4))
    assert level["envelope_db"] == pytest.approx([-40.0, -40.0, -20.0, -20.0], abs=0.01)
    with pytest.raises(ValueError, match="channels, samples"):
        track_level_basis(torch.zeros(10), SAMPLE_RATE)


def test_a_level_read_off_its_basis_at_a_gain_is_the_level_of_the_scaled_track():
    # A very quiet track: a passage at -66 LUFS, then one at -71, 1 dB under the absolute gate. A boost
    # lifts the second over the gate (the relative gate, 10 dB under, keeps it), so only gating the
    # scaled block powers, not shifting the loudness, agrees with measuring the boosted track.
    def at_lufs(audio, lufs):
        return audio * 10.0 ** ((lufs - integrated_loudness_lufs(audio, SAMPLE_RATE)) / 20.0)

    passages = [at_lufs(noise(2.0, rms=1.0, channels=2, seed=seed), lufs) for seed, lufs in ((4, -66.0), (5, -71.0))]
    track = torch.cat([*passages, torch.zeros(2, SAMPLE_RATE)], dim=1)
    basis = track_level_basis(track, SAMPLE_RATE)
    for gain_db in (-3.0, 0.0, 6.0, 30.0):
        measured = level_at_gain(track_level_basis(track * 10.0 ** (gain_db / 20.0), SAMPLE_RATE))
        read = level_at_gain(basis, gain_db)
        assert read["loudness_lufs"] == pytest.approx(measured["loudness_lufs"], abs=1e-4)
        assert read["envelope_db"] == pytest.approx(measured["envelope_db"], abs=0.011)
    shifted = level_at_gain(basis)["loudness_lufs"] + 30.0
    assert abs(level_at_gain(basis, 30.0)["loudness_lufs"] - shifted) > 0.1  # the quiet passage now counts


def test_tracks_given_as_bases_with_gains_report_the_levels_of_the_scaled_tracks():
    tracks = [noise(DURATION_S, rms=0.05, seed=1), sine(220.0, DURATION_S, amplitude=0.1)]
    gains_db = [-6.0, 4.5]
    scaled = [track * 10.0 ** (gain / 20.0) for track, gain in zip(tracks, gains_db, strict=True)]
    bases = [track_level_basis(track, SAMPLE_RATE) for track in tracks]
    from_bases = analyse(song(0), song(1), SAMPLE_RATE, tracks=bases, track_gains_db=gains_db)["track_levels"]
    from_audio = analyse(song(0), song(1), SAMPLE_RATE, tracks=scaled)["track_levels"]
    for read, measured in zip(from_bases, from_audio, strict=True):
        assert read["loudness_lufs"] == pytest.approx(measured["loudness_lufs"], abs=1e-4)
        assert read["envelope_db"] == pytest.approx(measured["envelope_db"], abs=0.011)
    with pytest.raises(ValueError, match="1 gains"):
        analyse(song(0), song(1), SAMPLE_RATE, tracks=bases, track_gains_db=[0.0])


def test_wrong_shapes_and_label_counts_are_refused():
    with pytest.raises(ValueError, match=r"mix: expected shape \(2, samples\)"):
        analyse(torch.zeros(1, 100), song(0), SAMPLE_RATE)
    with pytest.raises(ValueError, match="2 tracks with 1 names"):
        analyse(song(0), song(1), SAMPLE_RATE, tracks=[song(0), song(1)], track_names=["a"])
