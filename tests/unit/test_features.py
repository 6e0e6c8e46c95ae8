"""AF features (Diff-MST eqs. 3-7) against independent numpy computations and physics."""
import math

import numpy as np
import pytest
import torch

from mixing import features

SR = 44100


def sine(freq_hz: float, amplitude: float = 1.0, seconds: float = 1.0, sample_rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def noise(shape, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def batch(*channels: np.ndarray) -> torch.Tensor:
    """Channels (samples,) -> float32 tensor (1, channels, samples)."""
    return torch.tensor(np.stack(channels)[None], dtype=torch.float32)


def test_rms_of_sine_is_amplitude_over_sqrt2():
    x = batch(sine(1000, 0.5), sine(1000, 0.25))
    np.testing.assert_allclose(features.rms(x).numpy(), [[0.5 / math.sqrt(2), 0.25 / math.sqrt(2)]], rtol=1e-4)


def test_crest_factor_of_sine_is_3_01_db():
    # 441 Hz: exactly 100 samples per cycle, so a sample lands on the peak.
    x = batch(sine(441, 0.8))
    np.testing.assert_allclose(features.crest_factor_db(x).numpy(), [[20 * math.log10(math.sqrt(2))]], atol=1e-3)


def test_crest_factor_of_square_wave_is_0_db():
    square = np.sign(sine(441, 1.0) + 1e-9) * 0.3
    np.testing.assert_allclose(features.crest_factor_db(batch(square)).numpy(), [[0.0]], atol=1e-4)


def test_silence_has_zero_rms_and_zero_crest_factor():
    x = torch.zeros(1, 2, 1000)
    assert features.rms(x).max() < 1e-7
    np.testing.assert_allclose(features.crest_factor_db(x).numpy(), 0.0, atol=1e-4)


def test_features_match_numpy_on_noise():
    left, right = noise(SR, seed=1, scale=0.3), noise(SR, seed=2, scale=0.1) + 0.5 * noise(SR, seed=1, scale=0.3)
    got = features.audio_features(batch(left, right), SR)
    ms_l, ms_r = np.mean(left**2), np.mean(right**2)
    np.testing.assert_allclose(got["rms"].numpy()[0], np.sqrt([ms_l, ms_r]), rtol=1e-4)
    expected_cf = [20 * np.log10(np.max(np.abs(c)) / np.sqrt(np.mean(c**2))) for c in (left, right)]
    np.testing.assert_allclose(got["crest_factor_db"].numpy()[0], expected_cf, atol=1e-3)
    expected_sw = np.mean((left - right) ** 2) / np.mean((left + right) ** 2)
    np.testing.assert_allclose(got["stereo_width"].numpy(), [expected_sw], rtol=1e-4)
    np.testing.assert_allclose(got["stereo_imbalance"].numpy(), [(ms_r - ms_l) / (ms_r + ms_l)], rtol=1e-4)


def test_identical_channels_have_zero_width_and_imbalance():
    s = noise(SR, seed=3)
    x = batch(s, s)
    assert features.stereo_width(x).item() == pytest.approx(0.0, abs=1e-7)
    assert features.stereo_imbalance(x).item() == pytest.approx(0.0, abs=1e-7)


def test_silent_right_channel_gives_imbalance_minus_one_and_silent_left_plus_one():
    s = noise(SR, seed=4)
    silent = np.zeros_like(s)
    assert features.stereo_imbalance(batch(s, silent)).item() == pytest.approx(-1.0, abs=1e-6)
    assert features.stereo_imbalance(batch(silent, s)).item() == pytest.approx(1.0, abs=1e-6)


def test_panned_source_has_width_and_imbalance_of_its_gain_ratio():
    s = noise(SR, seed=5)
    left_gain, right_gain = 1.0, 0.5
    x = batch(left_gain * s, right_gain * s)
    expected_sw = (left_gain - right_gain) ** 2 / (left_gain + right_gain) ** 2
    expected_si = (right_gain**2 - left_gain**2) / (right_gain**2 + left_gain**2)
    assert features.stereo_width(x).item() == pytest.approx(expected_sw, rel=1e-4)
    assert features.stereo_imbalance(x).item() == pytest.approx(expected_si, rel=1e-4)


def test_uncorrelated_channels_of_equal_level_have_width_near_one():
    x = batch(noise(4 * SR, seed=6), noise(4 * SR, seed=7))
    assert features.stereo_width(x).item() == pytest.approx(1.0, abs=0.01)


def test_anti_phase_channels_have_huge_but_finite_width():
    s = noise(SR, seed=8)
    width = features.stereo_width(batch(s, -s)).item()
    assert math.isfinite(width) and width > 1e5


def test_silence_has_zero_width_and_imbalance():
    x = torch.zeros(2, 2, 500)
    assert torch.equal(features.stereo_width(x), torch.zeros(2))
    assert torch.equal(features.stereo_imbalance(x), torch.zeros(2))


@pytest.mark.parametrize("freq_hz", [60.0, 440.0, 1000.0, 3000.0, 12000.0])
def test_bark_spectrum_of_sine_peaks_in_the_band_nearest_its_frequency(freq_hz):
    spectrum = features.bark_spectrum(batch(sine(freq_hz, 0.5, seconds=0.5)), SR)[0, 0]
    peaks_bark = features.hz_to_bark(features.bark_band_centres_hz(SR))
    assert int(spectrum.argmax()) == int(np.argmin(np.abs(peaks_bark - features.hz_to_bark(freq_hz))))


def test_bark_spectrum_matches_numpy_stft_average():
    x = noise(10_000, seed=9)
    n_fft, hop = features.N_FFT, features.HOP_LENGTH
    padded = np.pad(x, n_fft // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = [padded[i * hop : i * hop + n_fft] * window for i in range(1 + len(x) // hop)]
    mean_magnitude = np.abs(np.fft.rfft(frames, axis=-1)).mean(axis=0)
    expected = np.log(features.bark_filterbank(SR).numpy().astype(np.float64) @ mean_magnitude + 1e-8)
    np.testing.assert_allclose(features.bark_spectrum(batch(x), SR).numpy()[0, 0], expected, atol=1e-4)


def test_bark_filterbank_is_a_partition_of_unity_between_the_outer_peaks():
    fb = features.bark_filterbank(SR).numpy()
    assert fb.shape == (features.N_BARK_BANDS, features.N_FFT // 2 + 1)
    centres_hz = features.bark_band_centres_hz(SR)
    freqs_hz = np.fft.rfftfreq(features.N_FFT, 1 / SR)
    inside = (freqs_hz >= centres_hz[0]) & (freqs_hz <= centres_hz[-1])
    np.testing.assert_allclose(fb[:, inside].sum(axis=0), 1.0, atol=1e-5)
    assert np.all(np.diff(centres_hz) > 0) and 20.0 < centres_hz[0] < centres_hz[-1] < 20000.0


def test_bark_filterbank_refuses_bands_without_bins():
    with pytest.raises(ValueError, match="n_fft"):
        features.bark_filterbank(SR, n_fft=64, n_bands=40)


def test_bark_band_peaks_stay_below_nyquist_at_low_sample_rates():
    assert features.bark_band_centres_hz(16000)[-1] < 8000.0


def test_batched_features_equal_items_one_by_one():
    items = [batch(noise(8000, seed=i), noise(8000, seed=i + 10)) for i in range(3)]
    together = features.audio_features(torch.cat(items), SR)
    for i, item in enumerate(items):
        alone = features.audio_features(item, SR)
        for name in features.FEATURE_NAMES:
            torch.testing.assert_close(together[name][i], alone[name][0], rtol=1e-5, atol=1e-5)


def test_mono_input_gives_only_per_channel_features():
    got = features.audio_features(batch(noise(4000)), SR)
    assert set(got) == {"rms", "crest_factor_db", "bark_spectrum"}
    assert got["bark_spectrum"].shape == (1, 1, features.N_BARK_BANDS)


def test_features_reject_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(batch, channels, samples\)"):
        features.rms(torch.zeros(2, 100))
    with pytest.raises(ValueError, match="2 channels"):
        features.stereo_width(torch.zeros(1, 1, 100))


@pytest.mark.parametrize("samples", [100, 2048, 44100 * 3 + 17])
def test_mean_magnitude_spectrum_in_chunks_equals_one_centred_stft(monkeypatch, samples):
    monkeypatch.setattr(features, "FRAMES_PER_CHUNK", 64)
    x = torch.randn(2, 2, samples, generator=torch.Generator().manual_seed(samples), dtype=torch.float64)
    window = torch.hann_window(features.N_FFT, dtype=torch.float64)
    whole = torch.stft(x.reshape(4, samples), features.N_FFT, features.HOP_LENGTH, window=window, center=True,
                       pad_mode="constant", return_complex=True)
    expected = whole.abs().mean(dim=-1).reshape(2, 2, -1)
    torch.testing.assert_close(features.mean_magnitude_spectrum(x), expected, rtol=1e-10, atol=1e-10)


def test_carries_stereo_tells_a_stereo_image_from_one_signal_twice():
    left = torch.randn(44100, generator=torch.Generator().manual_seed(1))
    right = torch.randn(44100, generator=torch.Generator().manual_seed(2))
    assert features.carries_stereo(torch.stack([left, right]))
    assert features.carries_stereo(torch.stack([left, 0.5 * left]))  # a panned mono source is an image
    assert not features.carries_stereo(torch.stack([left, left]))
    assert not features.carries_stereo(torch.stack([left, left + 1e-5 * right]))  # -100 dB of side: coding noise
    assert not features.carries_stereo(left.unsqueeze(0))


def test_power_and_magnitude_spectra_equal_abs_of_the_complex_values():
    spectrum = torch.complex(torch.tensor([3.0, 0.0, -1e-20, 5e18]), torch.tensor([4.0, 0.0, 0.0, -1.2e19]))
    assert torch.allclose(features.power_spectrum(spectrum), spectrum.abs().square(), rtol=1e-6)
    assert torch.equal(features.magnitude_spectrum(spectrum), torch.tensor([5.0, 0.0, 1e-20, 1.3e19]))


def test_magnitude_spectrum_has_the_gradient_of_abs_and_zero_where_the_spectrum_is_zero():
    # The frames in the zero padding of a centred STFT of a signal with silent stretches are exact zeros.
    x = torch.randn(3000, dtype=torch.float64)
    x[:1000] = 0.0
    window = torch.hann_window(256, dtype=torch.float64)
    grads = []
    for magnitude in (torch.abs, features.magnitude_spectrum):
        leaf = x.clone().requires_grad_()
        spectrum = torch.stft(leaf, 256, 64, window=window, return_complex=True, pad_mode="constant")
        assert bool((spectrum == 0).any())
        magnitude(spectrum).pow(1.5).sum().backward()
        grads.append(leaf.grad)
    assert not grads[1].isnan().any()
    assert torch.allclose(grads[1], grads[0], rtol=1e-10, atol=1e-12)


def test_mid_side_is_sum_and_difference():
    left, right = noise(1000, seed=3), noise(1000, seed=4)
    np.testing.assert_allclose(features.mid_side(batch(left, right)).numpy()[0], [left + right, left - right],
                               atol=1e-6)


def test_in_diff_msts_convention_a_mono_signal_has_a_silent_side():
    x = batch(*([noise(SR, seed=5)] * 2))
    spectrum = features.bark_spectrum(x, SR, convention=features.PAPER_BARK)[0]
    assert spectrum.shape == (2, features.N_BARK_BANDS)
    np.testing.assert_allclose(spectrum[1].numpy(), math.log(features.LOG_EPS), rtol=1e-6)
    assert spectrum[0].min() > math.log(features.LOG_EPS) + 10


def test_in_diff_msts_convention_a_left_only_signal_has_equal_mid_and_side():
    x = batch(noise(SR, seed=6), np.zeros(SR))
    mid, side = features.bark_spectrum(x, SR, convention=features.PAPER_BARK)[0]
    np.testing.assert_allclose(mid.numpy(), side.numpy(), atol=1e-5)
    # Left and right, as fitting takes them, say nothing of that: the right channel is silent instead.
    left, right = features.bark_spectrum(x, SR, convention=features.FIT_BARK)[0]
    assert (left - right).min() > 10


def test_the_rectangular_window_reads_a_bin_centred_sine_at_half_the_frame_length():
    # A whole number of cycles per frame: every frame's bin holds exactly amplitude * n_fft / 2 with no window,
    # a Hann window halves it. The edge frames (half zero-padded) hold half of it, hence the frames' mean.
    n_fft, hop = 1024, 256
    x = batch(sine(SR / n_fft * 16, 0.5, seconds=40 * n_fft / SR))
    frames = 1 + x.shape[-1] // hop
    rectangular = features.mean_magnitude_spectrum(x, n_fft=n_fft, hop_length=hop, window="rectangular")[0, 0, 16]
    hann = features.mean_magnitude_spectrum(x, n_fft=n_fft, hop_length=hop)[0, 0, 16]
    full = 0.5 * n_fft / 2
    assert float(rectangular) == pytest.approx(full * (frames - 4) / frames, rel=0.02)
    assert float(hann) == pytest.approx(float(rectangular) / 2, rel=0.02)
    with pytest.raises(ValueError, match="window"):
        features.mean_magnitude_spectrum(x, window="kaiser")
