"""The equal-loudness baseline mix (Diff-MST, section 3.3)."""
import math

import numpy as np
import pyloudnorm
import pytest
import torch

from mixing.baseline import PEAK_CEILING_DBFS, equal_loudness_mix
from mixing.loudness import integrated_loudness_lufs

SR = 44100


def sine(freq_hz: float, amplitude: float, seconds: float = 3.0, channels: int = 1) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * math.pi * freq_hz * t)).float().expand(channels, -1).clone()


def noise(amplitude: float, seconds: float = 3.0, channels: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return amplitude * torch.randn(channels, int(seconds * SR), generator=generator)


@pytest.mark.parametrize("target_lufs", [-14.0, -23.0])
def test_mix_loudness_equals_the_target(target_lufs):
    tracks = [sine(110, 0.8), sine(660, 0.01), noise(0.05), noise(0.002, channels=1, seed=1)]
    mix = equal_loudness_mix(tracks, SR, target_lufs=target_lufs)
    assert mix.shape == (2, 3 * SR) and mix.dtype == torch.float32
    assert integrated_loudness_lufs(mix, SR) == pytest.approx(target_lufs, abs=0.5)


def test_tracks_of_very_different_levels_come_out_equally_loud():
    low, high = 1000.0, 1500.0
    mix = equal_loudness_mix([sine(low, 0.9), sine(high, 0.003)], SR).numpy()[0]
    spectrum = np.abs(np.fft.rfft(mix))
    freqs = np.fft.rfftfreq(mix.size, 1 / SR)
    amplitude_ratio = spectrum[np.argmin(np.abs(freqs - low))] / spectrum[np.argmin(np.abs(freqs - high))]
    # Equal loudness means amplitudes in the inverse ratio of each tone's K-weighted loudness at equal amplitude.
    meter = pyloudnorm.Meter(SR)
    loudness = {f: meter.integrated_loudness(sine(f, 0.5).numpy()[0]) for f in (low, high)}
    expected_ratio = 10 ** ((loudness[high] - loudness[low]) / 20)
    assert 20 * math.log10(amplitude_ratio) == pytest.approx(20 * math.log10(expected_ratio), abs=0.2)


def test_mono_tracks_are_centred():
    mix = equal_loudness_mix([sine(300, 0.5), sine(500, 0.1)], SR)
    torch.testing.assert_close(mix[0], mix[1])


def test_mono_and_dual_mono_tracks_give_the_same_mix():
    mono = equal_loudness_mix([sine(300, 0.5), noise(0.1, channels=1)], SR)
    dual = equal_loudness_mix([sine(300, 0.5, channels=2), noise(0.1, channels=1).expand(2, -1)], SR)
    torch.testing.assert_close(mono, dual, atol=1e-5, rtol=1e-4)


def test_stereo_tracks_keep_their_image():
    left_only = torch.cat([sine(400, 0.5), torch.zeros(1, 3 * SR)])
    mix = equal_loudness_mix([left_only], SR)
    assert mix[1].abs().max() == 0.0 and mix[0].abs().max() > 0.1


def test_a_loud_target_on_peaky_material_is_held_below_the_peak_ceiling():
    clicks = torch.zeros(2, 3 * SR)
    clicks[:, :: SR // 10] = 1.0
    mix = equal_loudness_mix([clicks, sine(200, 0.01)], SR, target_lufs=-6.0)
    assert mix.abs().max().item() == pytest.approx(10 ** (PEAK_CEILING_DBFS / 20), rel=1e-5)
    assert integrated_loudness_lufs(mix, SR) < -6.0 - 1.0


def test_shorter_tracks_are_padded_with_silence():
    mix = equal_loudness_mix([sine(300, 0.5, seconds=3.0), sine(700, 0.5, seconds=1.0)], SR)
    assert mix.shape == (2, 3 * SR)
    assert torch.isfinite(mix).all()


def test_silent_tracks_add_nothing_and_all_silent_gives_silence():
    tone = sine(300, 0.5)
    with_silence = equal_loudness_mix([tone, torch.zeros(1, 3 * SR)], SR)
    torch.testing.assert_close(with_silence, equal_loudness_mix([tone], SR), atol=1e-6, rtol=1e-4)
    assert torch.equal(equal_loudness_mix([torch.zeros(2, SR)], SR), torch.zeros(2, SR))


def test_bad_tracks_are_refused():
    with pytest.raises(ValueError, match="at least one track"):
        equal_loudness_mix([], SR)
    with pytest.raises(ValueError, match="track 2"):
        equal_loudness_mix([sine(300, 0.5), torch.zeros(3, 3 * SR)], SR)
