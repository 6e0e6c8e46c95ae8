"""What the mix did (mixing.explain): EQ curves from the console's filters, the compressor's gain reduction,
levels in the mix, the master's bands."""
import math

import numpy as np
import pytest
import torch

from mixing import explain
from mixing.dsp.compressor import compressor, compressor_gain_db
from mixing.dsp.console import IncrementalRenderer
from mixing.dsp.eq import parametric_eq_iir
from mixing.explain import (
    SIDE_MINUS_MID_FLOOR_DB,
    downsampled_minimum,
    eq_curve_db,
    eq_curve_freqs_hz,
    gain_reduction_db,
    master_explanation,
    track_explanations,
)
from mixing.params import BAND_WIDTH_NAMES, MATCH_EQ_GAIN_NAMES, TRACK_PARAMS, MixParams, defaults
from tests.signals import sine

SR = 48000


def _track(**changes):
    return {**defaults(TRACK_PARAMS), **changes}


def test_flat_eq_reads_zero_db_everywhere():
    curve = eq_curve_db(_track(), SR, eq_curve_freqs_hz(SR))
    assert np.abs(curve).max() < 1e-9


def test_peaking_band_reads_its_gain_at_its_centre():
    values = _track(eq_band2_freq_hz=1000.0, eq_band2_gain_db=6.0, eq_band2_q=2.0)
    assert eq_curve_db(values, SR, np.array([1000.0]))[0] == pytest.approx(6.0, abs=1e-9)
    # Two octaves away a Q 2 band has fallen to well under a tenth of its gain.
    assert abs(eq_curve_db(values, SR, np.array([4000.0]))[0]) < 0.6


def test_eq_curve_is_the_console_filter_response_to_an_impulse():
    values = _track(eq_low_shelf_gain_db=-9.0, eq_band3_freq_hz=3000.0, eq_band3_gain_db=8.0, eq_band3_q=4.0,
                    eq_high_shelf_gain_db=5.0)
    impulse = torch.zeros(1, 1, SR)
    impulse[0, 0, 0] = 1.0
    params = {name: torch.tensor([value]) for name, value in values.items()}
    response = np.fft.rfft(parametric_eq_iir(impulse, SR, params)[0, 0].double().numpy())
    freqs_hz = np.array([50.0, 300.0, 3000.0, 12000.0])  # whole Hz: rfft bins of a one-second impulse response
    measured_db = 20 * np.log10(np.abs(response[freqs_hz.astype(int)]))
    np.testing.assert_allclose(eq_curve_db(values, SR, freqs_hz), measured_db, atol=1e-3)


def test_curve_frequencies_stop_below_nyquist():
    assert eq_curve_freqs_hz(44100)[-1] == pytest.approx(20000.0)
    assert eq_curve_freqs_hz(32000)[-1] < 16000.0


def test_gain_trace_is_what_the_compressor_applies():
    x = sine(1000.0, 0.5, sample_rate=SR, amplitude=0.5).reshape(1, 1, -1)
    settings = (-20.0, 4.0, 5.0, 50.0, 6.0)
    y = compressor(x, SR, *(torch.tensor([v]) for v in settings))
    gain = compressor_gain_db(x, SR, *(torch.tensor([v]) for v in settings))[0]
    loud = x[0, 0].abs() > 0.05
    applied_db = 20 * torch.log10(y[0, 0][loud] / x[0, 0][loud]).double()
    torch.testing.assert_close(gain[loud], applied_db, atol=1e-4, rtol=0)


def test_gain_reduction_on_a_constant_tone_is_the_static_curve():
    amplitude, threshold_db, ratio = 0.5, -20.0, 4.0
    # The detector reads a sine's RMS: 20 log10(A) - 3.01 dB; above a 0.1 dB knee the curve is linear.
    level_db = 20 * math.log10(amplitude) - 10 * math.log10(2)
    static_db = (1 / ratio - 1) * (level_db - threshold_db)
    tone = sine(1000.0, 2.0, sample_rate=SR, amplitude=amplitude).reshape(1, -1)
    values = _track(comp_threshold_db=threshold_db, comp_ratio=ratio, comp_knee_db=0.1)
    reduction = gain_reduction_db(tone, values, SR, points=20)
    assert len(reduction) == 20
    # After the attack has settled (the first segment holds it) each segment's deepest value is the curve's,
    # within the detector's ripple on a 1 kHz tone (+-0.2 dB of level, times the slope 0.75).
    assert reduction[0] == pytest.approx(static_db, abs=0.2)
    np.testing.assert_allclose(reduction[1:], static_db, atol=0.2)


def test_gain_reduction_follows_the_strip_gain_and_eq_before_the_compressor():
    tone = sine(1000.0, 1.0, sample_rate=SR, amplitude=0.5).reshape(1, -1)
    values = _track(comp_threshold_db=-20.0, comp_ratio=4.0, comp_knee_db=0.1)
    plain = gain_reduction_db(tone, values, SR, points=4)[-1]
    # +4 dB of fader and +4 dB of EQ at the tone put 8 dB more into the compressor: 6 dB more reduction at 4:1.
    louder = gain_reduction_db(tone, {**values, "gain_db": 4.0, "eq_band2_freq_hz": 1000.0, "eq_band2_gain_db": 4.0},
                               SR, points=4)[-1]
    assert louder - plain == pytest.approx(-8.0 * 0.75, abs=0.2)


def test_tracks_batched_together_read_as_each_alone():
    mono = [sine(f, 0.5, sample_rate=SR, amplitude=0.5).reshape(1, -1) for f in (300.0, 500.0, 700.0)]
    stereo = sine(400.0, 0.5, sample_rate=SR, amplitude=0.5).expand(2, -1).clone()
    tracks = [mono[0], stereo, mono[1], mono[2]]
    rows = [_track(comp_threshold_db=threshold, comp_ratio=ratio)
            for threshold, ratio in ((-20.0, 4.0), (-30.0, 2.0), (-10.0, 8.0), (-20.0, 1.0))]
    together = explain.gain_reductions_db(tracks, rows, SR, points=10)
    assert together == [gain_reduction_db(track, row, SR, points=10) for track, row in zip(tracks, rows, strict=True)]
    assert together[3] == [0.0] * 10 and min(together[0]) < -5.0


def test_no_ratio_means_no_reduction_and_the_deepest_value_per_segment_is_kept():
    assert gain_reduction_db(torch.ones(1, 100), _track(), SR, points=300) == [0.0] * 100
    trace = torch.zeros(1000)
    trace[510] = -7.0
    assert downsampled_minimum(trace, 10).tolist() == [0.0] * 5 + [-7.0] + [0.0] * 4


def test_track_levels_in_the_mix_and_their_pans():
    loud = sine(220.0, 1.0, sample_rate=SR, amplitude=0.4).reshape(1, -1)
    quiet = sine(880.0, 1.0, sample_rate=SR, amplitude=0.4).reshape(1, -1)
    params = MixParams.default(2)
    params.tracks[1]["gain_db"] = -20.0
    params.tracks[1]["pan_pct"] = 50.0
    renderer = IncrementalRenderer([loud, quiet], SR)
    cache = {}
    explained = track_explanations(renderer, params, [True, True], names=["Bass", "Keys"],
                                   cache=cache)
    assert [track["name"] for track in explained] == ["Bass", "Keys"]
    assert explained[1]["pan_pct"] == 50.0
    # The two tones are uncorrelated, so powers add: the quiet one, 20 dB down, is -20.04 dB from the mix.
    assert explained[1]["level_db"] - explained[0]["level_db"] == pytest.approx(-20.0, abs=0.05)
    assert explained[1]["level_in_mix_db"] == pytest.approx(-20.0 - 10 * math.log10(1.01), abs=0.05)
    assert explained[0]["level_in_mix_db"] == pytest.approx(-10 * math.log10(1.01), abs=0.05)
    muted = track_explanations(renderer, params, [True, False], cache=cache)
    assert muted[0]["level_in_mix_db"] == pytest.approx(0.0, abs=0.01)
    assert muted[1]["level_in_mix_db"] is None


def test_a_gain_reduction_is_run_again_only_when_its_strip_changes(monkeypatch):
    tracks = [sine(220.0, 0.5, sample_rate=SR, amplitude=0.4).reshape(1, -1) for _ in range(2)]
    params = MixParams.default(2)
    runs = []
    real = explain.gain_reductions_db
    monkeypatch.setattr(explain, "gain_reductions_db", lambda audios, rows, *args, **kwargs: (
        runs.extend(row["gain_db"] for row in rows), real(audios, rows, *args, **kwargs))[1])
    renderer, cache = IncrementalRenderer(tracks, SR), {}
    track_explanations(renderer, params, [True, True], cache=cache)
    assert len(runs) == 2
    params.tracks[0]["pan_pct"] = -40.0  # after the compressor: what it heard is the same
    track_explanations(renderer, params, [True, False], cache=cache)
    assert len(runs) == 2
    params.tracks[1]["gain_db"] = 3.0  # before it
    track_explanations(renderer, params, [True, True], cache=cache)
    assert runs[2:] == [3.0]


def test_master_bands_against_the_reference():
    master = MixParams.default(1).master
    master[MATCH_EQ_GAIN_NAMES[3]] = 2.5
    master[BAND_WIDTH_NAMES[20]] = 140.0
    bands = len(MATCH_EQ_GAIN_NAMES)
    features = {"mix": {"bark_spectrum_db": [-20.0] * bands, "side_bark_spectrum_db": [-32.0] * (bands - 1) + [-240.0]},
                "reference": {"bark_spectrum_db": [-18.0] * bands, "side_bark_spectrum_db": [-27.0] * bands},
                "baseline": None}
    explained = master_explanation(master, features, SR)
    assert explained["match_eq_gain_db"][3] == 2.5
    assert explained["band_width_pct"][20] == 140.0
    assert len(explained["band_centres_hz"]) == bands
    # The last band's side is gone (centred mono tracks): it reads the floor, not -220 dB.
    assert explained["spectra"]["mix"]["side_minus_mid_db"] == [-12.0] * (bands - 1) + [SIDE_MINUS_MID_FLOOR_DB]
    assert explained["spectra"]["reference"]["side_minus_mid_db"] == [-9.0] * bands
    assert max(abs(v) for v in explained["eq_db"]) < 1e-6
