"""The master bus's match EQ: its response on the bark axis, what it does to sines, gradients and shape checks."""
import math

import numpy as np
import pytest
import torch

from mixing.dsp.match_eq import match_eq, match_eq_response_db
from mixing.features import hz_to_bark
from mixing.params import MATCH_EQ_CENTRES_HZ, MATCH_EQ_GAIN_RANGE_DB
from tests.signals import amplitude_at

SAMPLE_RATE = 44100
BANDS = len(MATCH_EQ_CENTRES_HZ)


def random_gains_db(batch: int, seed: int) -> torch.Tensor:
    """Gains (batch, bands) spread over +-12 dB, so that neighbouring bands differ by up to 24 dB."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, BANDS, generator=generator, dtype=torch.float64) * 24.0 - 12.0).float()


def bin_freqs_hz(n_fft: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)


def test_response_is_linear_interpolation_of_the_gains_on_the_bark_axis():
    n_fft = 8192
    gains_db = random_gains_db(3, seed=0)
    response = match_eq_response_db(gains_db, SAMPLE_RATE, n_fft)
    assert response.shape == (3, n_fft // 2 + 1)
    # np.interp is also flat (at the end values) outside the centres.
    expected = np.stack([
        np.interp(hz_to_bark(bin_freqs_hz(n_fft)), hz_to_bark(np.asarray(MATCH_EQ_CENTRES_HZ)), row)
        for row in gains_db.double().numpy()
    ])
    np.testing.assert_allclose(response.numpy(), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("band", [0, 1, 7, 15, BANDS - 2, BANDS - 1])
def test_response_at_a_centre_frequency_equals_that_bands_gain(band):
    # 0.17 Hz bins: the bin nearest a centre is at most 0.08 Hz away, where the
    # response has moved by at most ~0.02 dB for 24 dB steps 80 Hz apart.
    n_fft = 2**18
    gains_db = random_gains_db(1, seed=1)
    response = match_eq_response_db(gains_db, SAMPLE_RATE, n_fft)[0]
    nearest = round(MATCH_EQ_CENTRES_HZ[band] * n_fft / SAMPLE_RATE)
    assert float(response[nearest]) == pytest.approx(float(gains_db[0, band]), abs=0.03)


def test_response_is_flat_at_the_end_gains_below_the_first_and_above_the_last_centre():
    n_fft = 4096
    gains_db = random_gains_db(2, seed=2)
    response = match_eq_response_db(gains_db, SAMPLE_RATE, n_fft)
    freqs_hz = bin_freqs_hz(n_fft)
    below = torch.from_numpy(freqs_hz <= MATCH_EQ_CENTRES_HZ[0])
    above = torch.from_numpy(freqs_hz >= MATCH_EQ_CENTRES_HZ[-1])
    assert below.sum() >= 9 and above.sum() >= 700  # DC up to 95 Hz, 13.7 kHz up to Nyquist
    torch.testing.assert_close(response[:, below], gains_db[:, :1].expand(-1, int(below.sum())), atol=1e-5, rtol=0)
    torch.testing.assert_close(response[:, above], gains_db[:, -1:].expand(-1, int(above.sum())), atol=1e-5, rtol=0)


def test_a_sine_at_each_centre_comes_out_with_that_bands_gain():
    # One batch item per band, each a 2 s sine at its band's centre, every item with the same jagged gains.
    samples = 2 * SAMPLE_RATE
    t = torch.arange(samples, dtype=torch.float64) / SAMPLE_RATE
    sines = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in MATCH_EQ_CENTRES_HZ]).float()
    x = torch.stack([sines, -sines], dim=1)  # (bands, 2, samples): both channels filtered alike
    gains_db = random_gains_db(1, seed=3).expand(BANDS, -1).contiguous()
    y = match_eq(x, SAMPLE_RATE, gains_db)
    assert y.shape == x.shape
    # Away from the ends, where the cut-off sine's onset rings.
    middle = slice(SAMPLE_RATE // 2, samples - SAMPLE_RATE // 2)
    for band, freq_hz in enumerate(MATCH_EQ_CENTRES_HZ):
        for channel in range(2):
            gain_db = 20 * math.log10(amplitude_at(y[band, channel, middle], freq_hz) / 0.5)
            assert gain_db == pytest.approx(float(gains_db[0, band]), abs=0.1), (band, channel)


def test_per_channel_gains_filter_each_channel_with_its_own_curve():
    x = torch.randn(2, 2, SAMPLE_RATE // 4, generator=torch.Generator().manual_seed(11))
    gains_db = torch.stack([random_gains_db(2, seed=12), random_gains_db(2, seed=13)], dim=1)  # (batch, 2, bands)
    together = match_eq(x, SAMPLE_RATE, gains_db)
    for channel in range(2):
        alone = match_eq(x[:, channel : channel + 1], SAMPLE_RATE, gains_db[:, channel])
        torch.testing.assert_close(together[:, channel : channel + 1], alone, atol=1e-6, rtol=0)
    # One curve given per channel, the same for both, is the one curve for both.
    same = gains_db[:, :1].expand(-1, 2, -1)
    torch.testing.assert_close(match_eq(x, SAMPLE_RATE, same), match_eq(x, SAMPLE_RATE, gains_db[:, 0]),
                               atol=1e-6, rtol=0)


def test_batch_items_are_filtered_with_their_own_gains():
    x = torch.randn(2, 1, SAMPLE_RATE // 4, generator=torch.Generator().manual_seed(4))
    gains_db = random_gains_db(2, seed=5)
    together = match_eq(x, SAMPLE_RATE, gains_db)
    apart = torch.cat([match_eq(x[i : i + 1], SAMPLE_RATE, gains_db[i : i + 1]) for i in range(2)])
    # One FFT of the batch against one per item: float32 rounding of unit-variance noise, a few ULP.
    torch.testing.assert_close(together, apart, atol=1e-5, rtol=0)
    assert not torch.allclose(together[0], together[1])


def test_flat_gains_return_the_input_tensor_itself():
    x = torch.randn(2, 2, 1000, generator=torch.Generator().manual_seed(6))
    assert match_eq(x, SAMPLE_RATE, torch.zeros(2, BANDS)) is x


def test_flat_gains_that_need_a_gradient_filter_transparently():
    x = torch.randn(1, 2, 5000, generator=torch.Generator().manual_seed(7))
    gains_db = torch.zeros(1, BANDS, requires_grad=True)
    y = match_eq(x, SAMPLE_RATE, gains_db)
    assert y is not x and y.requires_grad
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_a_common_gain_scales_the_signal():
    x = torch.randn(1, 2, 5000, generator=torch.Generator().manual_seed(8))
    y = match_eq(x, SAMPLE_RATE, torch.full((1, BANDS), -MATCH_EQ_GAIN_RANGE_DB))
    torch.testing.assert_close(y, x * 10 ** (-MATCH_EQ_GAIN_RANGE_DB / 20), atol=1e-6, rtol=0)


def test_gradients_wrt_every_gain_are_finite_and_nonzero():
    # White noise has energy in every band, so every gain moves the output's energy.
    x = 0.1 * torch.randn(2, 2, SAMPLE_RATE // 2, generator=torch.Generator().manual_seed(9))
    gains_db = random_gains_db(2, seed=10).requires_grad_()
    match_eq(x, SAMPLE_RATE, gains_db).square().sum().backward()
    assert torch.isfinite(gains_db.grad).all()
    assert (gains_db.grad > 0).all()  # more gain, more energy


@pytest.mark.parametrize(
    "x_shape, gains_shape, message",
    [
        ((2, 1000), (2, BANDS), "x: expected shape"),
        ((1, 2, 2, 1000), (1, BANDS), "x: expected shape"),
        ((2, 2, 1000), (2, BANDS - 1), "gains_db: expected shape"),
        ((2, 2, 1000), (1, BANDS), "gains_db: expected shape"),
        ((2, 2, 1000), (BANDS,), "gains_db: expected shape"),
        ((2, 2, 1000), (2, 3, BANDS), "gains_db: expected shape"),
    ],
)
def test_bad_shapes_raise_value_error(x_shape, gains_shape, message):
    with pytest.raises(ValueError, match=message):
        match_eq(torch.zeros(x_shape), SAMPLE_RATE, torch.ones(gains_shape))


# The multiband width: the side signal scaled band by band after the EQ, the mid untouched.

def test_a_mono_signal_is_unchanged_at_any_band_widths():
    mono = torch.randn(1, 1, SAMPLE_RATE // 4, generator=torch.Generator().manual_seed(20))
    x = mono.expand(-1, 2, -1).contiguous()
    widths_pct = torch.rand(1, BANDS, generator=torch.Generator().manual_seed(21)) * 200.0
    torch.testing.assert_close(match_eq(x, SAMPLE_RATE, torch.zeros(1, BANDS), band_width_pct=widths_pct), x,
                               atol=1e-5, rtol=0)


def test_widths_of_100_pct_everywhere_are_the_identity():
    x = torch.randn(2, 2, 1000, generator=torch.Generator().manual_seed(22))
    assert match_eq(x, SAMPLE_RATE, torch.zeros(2, BANDS), band_width_pct=torch.full((2, BANDS), 100.0)) is x
    widths_pct = torch.full((2, BANDS), 100.0, requires_grad=True)
    torch.testing.assert_close(match_eq(x, SAMPLE_RATE, torch.zeros(2, BANDS), band_width_pct=widths_pct), x,
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("band", [3, 12, 20])
def test_a_left_only_tone_at_a_band_centre_at_0_pct_width_comes_out_equal_in_both_channels(band):
    # Left only: mid = side = tone / 2. With the band's width at 0 % its side is gone, so each channel carries the
    # mid, half the tone; a band's neighbours have no weight at its centre, so their widths do not matter.
    samples = 2 * SAMPLE_RATE
    t = torch.arange(samples, dtype=torch.float64) / SAMPLE_RATE
    tone = (0.5 * torch.sin(2 * math.pi * MATCH_EQ_CENTRES_HZ[band] * t)).float()
    x = torch.stack([tone, torch.zeros_like(tone)])[None]
    widths_pct = torch.full((1, BANDS), 150.0)
    widths_pct[0, band] = 0.0
    y = match_eq(x, SAMPLE_RATE, torch.zeros(1, BANDS), band_width_pct=widths_pct)[0]
    middle = slice(SAMPLE_RATE // 2, samples - SAMPLE_RATE // 2)
    for channel in range(2):
        assert amplitude_at(y[channel, middle], MATCH_EQ_CENTRES_HZ[band]) == pytest.approx(0.25, rel=0.01)
    assert float((y[0, middle] - y[1, middle]).abs().max()) < 0.01 * 0.25


def test_a_band_width_of_200_pct_doubles_that_bands_side_and_keeps_its_mid():
    band = 10
    samples = 2 * SAMPLE_RATE
    t = torch.arange(samples, dtype=torch.float64) / SAMPLE_RATE
    tone = (0.5 * torch.sin(2 * math.pi * MATCH_EQ_CENTRES_HZ[band] * t)).float()
    x = torch.stack([tone, torch.zeros_like(tone)])[None]  # mid = side = tone / 2
    widths_pct = torch.full((1, BANDS), 100.0)
    widths_pct[0, band] = 200.0
    y = match_eq(x, SAMPLE_RATE, torch.zeros(1, BANDS), band_width_pct=widths_pct)[0]
    middle = slice(SAMPLE_RATE // 2, samples - SAMPLE_RATE // 2)
    freq_hz = MATCH_EQ_CENTRES_HZ[band]
    assert amplitude_at((y[0, middle] + y[1, middle]) / 2, freq_hz) == pytest.approx(0.25, rel=0.01)
    assert amplitude_at((y[0, middle] - y[1, middle]) / 2, freq_hz) == pytest.approx(0.5, rel=0.01)


def test_gradients_wrt_every_band_width_are_finite_and_nonzero():
    x = 0.1 * torch.randn(1, 2, SAMPLE_RATE // 2, generator=torch.Generator().manual_seed(23))
    widths_pct = torch.full((1, BANDS), 80.0, requires_grad=True)
    match_eq(x, SAMPLE_RATE, torch.zeros(1, BANDS), band_width_pct=widths_pct).square().sum().backward()
    assert torch.isfinite(widths_pct.grad).all()
    assert (widths_pct.grad > 0).all()  # uncorrelated channels: a wider band has more side energy, the same mid


def test_band_widths_need_a_stereo_signal_and_one_width_per_band():
    with pytest.raises(ValueError, match="band_width_pct: expected shape"):
        match_eq(torch.zeros(1, 1, 1000), SAMPLE_RATE, torch.zeros(1, BANDS), band_width_pct=torch.ones(1, BANDS))
    with pytest.raises(ValueError, match="band_width_pct: expected shape"):
        match_eq(torch.zeros(1, 2, 1000), SAMPLE_RATE, torch.zeros(1, BANDS), band_width_pct=torch.ones(1, 3))
