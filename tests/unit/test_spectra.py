"""Chart spectra: the log-frequency spectrogram and the 1/3-octave long-term spectrum, against sines and noise."""
import math

import numpy as np
import pytest
import torch

from mixing import spectra
from tests.unit.test_features import SR, noise, sine


def test_spectrogram_data_fits_a_browser_plot_and_finds_a_sine():
    audio = np.stack([sine(1000, 0.5, seconds=30.0), sine(1000, 0.5, seconds=30.0)])
    data = spectra.spectrogram_data(audio, SR, max_frames=600, n_bins=256)
    assert data["db"].shape == (256, len(data["times_s"])) and len(data["times_s"]) <= 600
    assert data["freqs_hz"].shape == (256,) and data["freqs_hz"][0] == pytest.approx(20.0)
    assert np.all(np.diff(data["times_s"]) > 0) and data["times_s"][0] >= 0.0 and data["times_s"][-1] <= 30.0
    profile = data["db"][:, len(data["times_s"]) // 2]
    assert data["freqs_hz"][profile.argmax()] == pytest.approx(1000.0, rel=0.03)
    # Averaging power over the ~2.5 FFT bins of this log bin lowers the peak by a few dB.
    assert 20 * math.log10(0.5) - 6.0 < profile.max() <= 20 * math.log10(0.5) + 0.5


def test_spectrogram_data_accepts_mono_tensors_and_floors_silence():
    data = spectra.spectrogram_data(torch.zeros(SR), SR)
    assert data["db"].min() == pytest.approx(-120.0)


def test_long_term_spectrum_reads_a_sine_level_in_its_band():
    data = spectra.long_term_spectrum(sine(1000, 0.5, seconds=5.0)[None], SR)
    band = int(np.argmin(np.abs(data["freqs_hz"] - 1000.0)))
    assert data["db"].argmax() == band
    assert data["db"][band] == pytest.approx(20 * math.log10(0.5) - 3.01, abs=0.2)


def test_long_term_spectrum_band_powers_add_up_to_the_mean_square():
    x = noise((2, 5 * SR), seed=11)
    data = spectra.long_term_spectrum(x, SR)
    assert len(data["freqs_hz"]) == 31
    # White noise spreads its power evenly from 0 Hz to Nyquist; the bands cover 17.8 Hz to Nyquist.
    covered_fraction = (SR / 2 - data["freqs_hz"][0] / 10 ** (1 / 20)) / (SR / 2)
    assert np.sum(10 ** (data["db"] / 10)) == pytest.approx(np.mean(x**2) * covered_fraction, rel=0.02)
