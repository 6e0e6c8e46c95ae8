"""The master output stage: true peak, the true-peak ceiling, loudness normalization and its differentiable estimate."""
import math

import numpy as np
import pyloudnorm
import pytest
import scipy.signal
import torch

from mixing.dsp.limiter import ceiling, driven_ceiling, loudness_gain_db, oversampling_factor, true_peak_dbtp
from tests.signals import noise, sine

SR = 44100


def _faded(audio: torch.Tensor, fade_s: float = 0.01) -> torch.Tensor:
    # Without fades the jump from silence to full level rings in the interpolation.
    samples = audio.shape[-1]
    ramp = torch.clamp(torch.minimum(torch.arange(samples), torch.arange(samples).flip(0)) / (fade_s * SR), max=1.0)
    return audio * ramp


def test_quarter_rate_sine_at_45_degrees_reads_0_dbtp_while_its_samples_read_minus_3_dbfs():
    n = torch.arange(SR, dtype=torch.float64)
    x = _faded(torch.sin(2 * math.pi * n / 4 + math.pi / 4)).unsqueeze(0)
    assert 20 * math.log10(x.abs().max().item()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(x, SR) == pytest.approx(0.0, abs=0.15)


@pytest.mark.parametrize("freq_hz", [100.0, 3000.0, 15000.0])
def test_true_peak_of_a_steady_sine_is_its_amplitude(freq_hz):
    assert true_peak_dbtp(_faded(sine(freq_hz, 0.5, amplitude=0.5)), SR) == pytest.approx(20 * math.log10(0.5), abs=0.1)


def test_true_peak_agrees_with_scipy_resample_poly_on_noise():
    x = noise(2.0, rms=0.3, channels=2, seed=1).numpy()
    reference_dbtp = 20 * math.log10(np.abs(scipy.signal.resample_poly(x, 4, 1, axis=1)).max())
    # White noise reaches Nyquist, where the two filters' transition bands differ most.
    assert true_peak_dbtp(x, SR) == pytest.approx(reference_dbtp, abs=0.1)


def test_true_peak_of_silence_is_minus_infinity():
    assert true_peak_dbtp(torch.zeros(2, 1000), SR) == -math.inf


@pytest.mark.parametrize("sample_rate, factor", [(44100, 4), (48000, 4), (96000, 2), (192000, 1)])
def test_oversampling_reaches_about_192_khz(sample_rate, factor):
    assert oversampling_factor(sample_rate) == factor


def _square(amplitude=1.0, freq_hz=1000.0, seconds=1.0):
    return amplitude * torch.sign(sine(freq_hz, seconds, amplitude=1.0, channels=2))


@pytest.mark.parametrize(
    "name, make",
    [
        ("full-scale square", lambda: _square()),
        ("+12 dBFS sine", lambda: sine(997.0, 1.0, amplitude=4.0, channels=2)),
        ("loud noise", lambda: noise(1.0, rms=1.0, channels=2, seed=2)),
    ],
)
@pytest.mark.parametrize("ceiling_dbtp", [-1.0, -6.0])
def test_output_true_peak_never_exceeds_the_ceiling(name, make, ceiling_dbtp):
    out = ceiling(make(), SR, ceiling_dbtp)
    peak_dbtp = true_peak_dbtp(out, SR)
    assert peak_dbtp <= ceiling_dbtp
    # A limiter, not a fader pulled down: the loudest peaks still reach the ceiling.
    assert peak_dbtp > ceiling_dbtp - 0.2


def test_limiting_leaves_audio_far_from_the_peaks_alone():
    quiet, burst = sine(440.0, 1.0, amplitude=0.1, channels=2), sine(440.0, 0.1, amplitude=2.0, channels=2)
    x = torch.cat([quiet, burst, quiet], dim=1)
    out = ceiling(x, SR, -1.0)
    untouched = SR - int(0.01 * SR)
    assert torch.equal(out[:, :untouched], x[:, :untouched])
    assert (out[:, SR : SR + burst.shape[1]].abs().max().item()) < 10 ** (-1.0 / 20)
    # 0.5 s after the burst the 60 ms release has recovered to within 0.01 dB.
    torch.testing.assert_close(out[:, -SR // 2 :], x[:, -SR // 2 :], atol=0, rtol=1e-3)


def test_input_below_the_ceiling_is_returned_unchanged():
    x = noise(1.0, rms=0.05, channels=2, seed=3)
    assert true_peak_dbtp(x, SR) < -1.0
    assert torch.equal(ceiling(x, SR, -1.0), x)


def test_a_driven_sine_above_the_ceiling_peaks_at_the_ceiling():
    out = driven_ceiling(_faded(sine(997.0, 1.0, amplitude=0.5, channels=2)), SR, -1.0, 6.0)
    assert true_peak_dbtp(out, SR) == pytest.approx(-1.0, abs=0.1)


def test_no_drive_is_the_identity_below_the_ceiling():
    x = noise(1.0, rms=0.05, channels=2, seed=3)
    assert torch.equal(driven_ceiling(x, SR, -1.0, 0.0), x)


@pytest.mark.parametrize("drive_db", [3.0, 6.0])
def test_drive_lowers_the_crest_factor_by_its_db(drive_db):
    # A quiet sine with one loud burst: the ceiling holds the burst's peak, the sine far after it rises by the
    # drive, so peak over the sine's RMS falls by drive_db.
    quiet, burst = sine(440.0, 1.0, amplitude=0.1, channels=2), sine(440.0, 0.1, amplitude=2.0, channels=2)
    x = torch.cat([quiet, burst, quiet], dim=1)

    def crest_db(audio):
        return 20 * math.log10(float(audio.abs().max()) / float(audio[:, -SR // 2:].pow(2).mean().sqrt()))

    fall_db = crest_db(driven_ceiling(x, SR, -1.0, 0.0)) - crest_db(driven_ceiling(x, SR, -1.0, drive_db))
    assert fall_db == pytest.approx(drive_db, abs=0.05)


def test_ceiling_keeps_the_input_type_and_dtype():
    x = sine(997.0, 0.2, amplitude=2.0, channels=2)
    assert ceiling(x, SR, -1.0).dtype == torch.float32
    out = ceiling(x.double().numpy(), SR, -1.0)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64


def test_ceiling_rejects_batched_audio():
    with pytest.raises(ValueError, match="channels, samples"):
        ceiling(torch.zeros(1, 2, 100), SR, -1.0)


def _brown_noise(seconds, seed):
    white = noise(seconds, rms=1.0, channels=2, seed=seed).double()
    brown = torch.cumsum(white, dim=1)
    brown = brown - torch.linspace(0, 1, brown.shape[1], dtype=torch.float64) * brown[:, -1:]  # no drift
    return (0.1 * brown / brown.std()).float()


@pytest.mark.parametrize(
    "make",
    [
        lambda: noise(3.0, rms=0.1, channels=2, seed=5),
        lambda: _brown_noise(3.0, 6),
        lambda: noise(3.0, rms=0.3, channels=1, seed=7),
    ],
)
def test_differentiable_loudness_gain_agrees_with_pyloudnorm_on_steady_noise(make):
    x = make()
    measured_lufs = pyloudnorm.Meter(SR).integrated_loudness(x.numpy().T.astype(np.float64))
    gain_db = loudness_gain_db(x.unsqueeze(0), SR, -23.0)
    assert gain_db.shape == (1,)
    assert gain_db.item() == pytest.approx(-23.0 - measured_lufs, abs=1.0)


def test_loudness_gain_is_differentiable_and_finite_on_silence():
    sound = noise(0.5, rms=0.1, channels=2, seed=8).unsqueeze(0)
    x = torch.cat([sound, torch.zeros_like(sound)]).requires_grad_()
    gain_db = loudness_gain_db(x, SR, torch.tensor(-14.0))
    gain_db.sum().backward()
    assert torch.isfinite(gain_db).all() and torch.isfinite(x.grad).all()
    assert x.grad[0].abs().sum() > 0


def test_loudness_gain_falls_by_the_level_increase():
    x = noise(1.0, rms=0.1, channels=2, seed=9).unsqueeze(0)
    louder = x * 10 ** (6 / 20)
    assert (loudness_gain_db(x, SR, -14.0) - loudness_gain_db(louder, SR, -14.0)).item() == pytest.approx(6.0, abs=1e-3)
