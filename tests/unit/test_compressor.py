"""The compressor: static curve, ballistics, gradients, agreement with torchcomp's recursion."""
import math

import pytest
import torch
from torchcomp import avg
from torchcomp.core import compressor_core

from mixing.dsp.compressor import DETECTOR_MS, compressor, ms_to_coef

SR = 44100
SINE_PEAK_DB = -6.0
SINE_RMS_DB = SINE_PEAK_DB - 10 * math.log10(2)


def _sine(seconds, peak_db=SINE_PEAK_DB, freq_hz=1000.0, channels=1, dtype=torch.float32):
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    wave = 10 ** (peak_db / 20) * torch.sin(2 * math.pi * freq_hz * t)
    return wave.to(dtype).expand(1, channels, -1).clone()


def _settled_gain_db(x, y, last_s=0.2):
    tail = slice(-int(last_s * SR), None)
    loud = x[..., tail].abs() > 0.05
    return (20 * torch.log10(y[..., tail][loud] / x[..., tail][loud])).mean().item()


def _gain_reduction_curve_db(x, y):
    return -20 * torch.log10(y[0, 0] / x[0, 0])


def _compress(x, threshold_db=-20.0, ratio=4.0, attack_ms=5.0, release_ms=50.0, knee_db=0.1):
    return compressor(x, SR, threshold_db, ratio, attack_ms, release_ms, knee_db)


def test_gain_reduction_above_knee_is_level_over_threshold_times_one_minus_inverse_ratio():
    x = _sine(1.0)
    expected_db = -(SINE_RMS_DB - -20.0) * (1 - 1 / 4.0)
    assert _settled_gain_db(x, _compress(x)) == pytest.approx(expected_db, abs=0.5)


def test_gain_inside_soft_knee_follows_the_quadratic():
    threshold_db, ratio, knee_db = -10.0, 4.0, 6.0
    x = _sine(1.0)
    over_db = SINE_RMS_DB - threshold_db
    assert abs(2 * over_db) < knee_db
    expected_db = (1 / ratio - 1) * (over_db + knee_db / 2) ** 2 / (2 * knee_db)
    y = _compress(x, threshold_db=threshold_db, ratio=ratio, knee_db=knee_db)
    assert _settled_gain_db(x, y) == pytest.approx(expected_db, abs=0.2)


def test_no_gain_change_below_the_knee():
    x = _sine(0.5)
    y = _compress(x, threshold_db=0.0, knee_db=6.0)
    assert torch.equal(y, x)


def test_ratio_one_leaves_the_signal_unchanged_even_at_plus_12_dbfs():
    x = torch.randn(2, 2, 20000, generator=torch.Generator().manual_seed(1)) * 4.0
    y = _compress(x, threshold_db=-60.0, ratio=1.0, attack_ms=0.1, knee_db=0.1)
    torch.testing.assert_close(y, x, atol=1e-6, rtol=0)


def _level_step(low, high, before_s, after_s):
    # A constant (DC) level has no ripple, so the detector reads it exactly.
    return torch.cat([torch.full((int(before_s * SR),), low), torch.full((int(after_s * SR),), high)]).view(1, 1, -1)


def _time_to_fraction_ms(curve_db, start, final_db, fraction):
    change = (curve_db[start:] - curve_db[start - 1]) / (final_db - curve_db[start - 1])
    return torch.nonzero(change >= fraction)[0].item() / SR * 1000


def test_gain_reduction_reaches_63_percent_after_the_attack_time():
    attack_ms, step = 20.0, int(0.3 * SR)
    x = _level_step(0.001, 0.5, 0.3, 0.5)
    curve = _gain_reduction_curve_db(x, _compress(x, threshold_db=-30.0, attack_ms=attack_ms, release_ms=200.0))
    final_db = (20 * math.log10(0.5) + 30.0) * (1 - 1 / 4.0)
    assert curve[-1].item() == pytest.approx(final_db, abs=0.05)
    t63 = _time_to_fraction_ms(curve, step, final_db, 1 - 1 / math.e)
    # The detector adds a small lag on top of the smoothing.
    assert attack_ms <= t63 <= attack_ms + DETECTOR_MS


def test_gain_recovers_63_percent_after_the_release_time():
    release_ms, step = 300.0, int(0.5 * SR)
    x = _level_step(0.5, 0.001, 0.5, 3.0)
    curve = _gain_reduction_curve_db(x, _compress(x, threshold_db=-30.0, attack_ms=5.0, release_ms=release_ms))
    assert curve[step - 1].item() > 17.0
    assert curve[-1].item() == pytest.approx(0.0, abs=0.05)
    t63 = _time_to_fraction_ms(curve, step, 0.0, 1 - 1 / math.e)
    # The detector takes about 11 ms to bring a 24 dB fall below the threshold.
    assert release_ms <= t63 <= release_ms + 15.0


def test_release_time_changes_the_output():
    x = _level_step(0.5, 0.01, 0.2, 0.3)
    fast, slow = (_compress(x, threshold_db=-30.0, release_ms=ms) for ms in (10.0, 1000.0))
    assert (fast - slow).abs().max().item() > 1e-3


def test_stereo_is_linked_one_gain_for_both_channels():
    left = _sine(0.5)[0, 0]
    x = torch.stack([left, 0.01 * torch.ones_like(left)]).unsqueeze(0)
    y = _compress(x)
    ratio_right = y[0, 1] / x[0, 1]
    loud = x[0, 0].abs() > 0.05
    torch.testing.assert_close(ratio_right[loud], (y[0, 0] / x[0, 0])[loud])
    assert ratio_right[-1].item() < 0.5


def test_batch_matches_items_processed_one_by_one():
    scales = torch.tensor([0.05, 0.5, 2.0]).view(3, 1, 1)
    x = torch.randn(3, 2, 4000, generator=torch.Generator().manual_seed(2)) * scales
    values = ([-30.0, -20.0, -10.0], [2.0, 4.0, 8.0], [0.1, 5.0, 50.0], [10.0, 100.0, 1000.0], [0.1, 6.0, 12.0])
    params = [torch.tensor(v) for v in values]
    batched = compressor(x, SR, *params)
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], compressor(x[i : i + 1], SR, *(p[i : i + 1] for p in params)))


def _reference(x, threshold_db, ratio, attack_ms, release_ms, knee_db):
    """The same compressor from torchcomp's recursions and torch ops."""
    batch = x.shape[0]
    detector_coef = ms_to_coef(torch.full((batch,), DETECTOR_MS, dtype=x.dtype), SR)
    level_db = 10 * torch.log10(avg(x.square().mean(1), detector_coef) + 1e-12)
    over_db = level_db - threshold_db[:, None]
    slope, knee = 1 / ratio[:, None] - 1, knee_db[:, None]
    in_knee_db = slope * (over_db + knee / 2) ** 2 / (2 * knee)
    target_db = torch.where(
        2 * over_db < -knee, torch.zeros_like(over_db), torch.where(2 * over_db > knee, slope * over_db, in_knee_db)
    )
    initial_db = torch.zeros(batch, dtype=x.dtype)
    gain_db = compressor_core(target_db, initial_db, ms_to_coef(attack_ms, SR), ms_to_coef(release_ms, SR))
    return x * torch.pow(10, gain_db / 20)[:, None]


def _params(dtype=torch.float64):
    values = ([-30.0, -20.0], [4.0, 2.0], [1.0, 5.0], [30.0, 100.0], [6.0, 0.1])
    return [torch.tensor(v, dtype=dtype, requires_grad=True) for v in values]


def test_output_and_gradients_match_torchcomp_recursion():
    ramp = torch.linspace(0.01, 1.0, 3000, dtype=torch.float64)
    generator = torch.Generator().manual_seed(3)
    x = (torch.randn(2, 2, 3000, dtype=torch.float64, generator=generator) * ramp).requires_grad_()
    params = _params()
    y, y_ref = compressor(x, SR, *params), _reference(x, *params)
    torch.testing.assert_close(y, y_ref)
    weights = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    grads = torch.autograd.grad((y * weights).sum(), [x, *params])
    grads_ref = torch.autograd.grad((y_ref * weights).sum(), [x, *params])
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(grad, grad_ref)


def test_gradcheck_in_float64():
    x = (torch.randn(2, 2, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 0.5).requires_grad_()
    params = _params()
    assert torch.autograd.gradcheck(lambda *args: compressor(args[0], 8000, *args[1:]), (x, *params))


@pytest.mark.parametrize(
    "scale, threshold_db, ratio, attack_ms, knee_db",
    [
        (0.0, -20.0, 4.0, 10.0, 6.0),  # digital silence
        (1.0, -20.0, 4.0, 10.0, 6.0),  # full scale
        (4.0, -60.0, 20.0, 0.1, 0.1),  # +12 dBFS, fastest attack, smallest knee
        (1.0, -20.0, 1.0, 10.0, 0.1),  # ratio 1
    ],
)
def test_gradients_are_finite_at_the_edges(scale, threshold_db, ratio, attack_ms, knee_db):
    x = (torch.sign(torch.randn(1, 2, 2000, generator=torch.Generator().manual_seed(6))) * scale).requires_grad_()
    params = [torch.tensor([v], requires_grad=True) for v in (threshold_db, ratio, attack_ms, 100.0, knee_db)]
    y = compressor(x, SR, *params)
    y.square().mean().backward()
    assert torch.isfinite(y).all()
    for tensor in (x, *params):
        assert torch.isfinite(tensor.grad).all()


def test_without_gradients_gives_the_same_output():
    x = torch.randn(2, 1, 5000, generator=torch.Generator().manual_seed(7)) * torch.linspace(0, 1, 5000)
    params = [torch.tensor(v) for v in ([-20.0, -10.0], [4.0, 8.0], [1.0, 5.0], [30.0, 100.0], [6.0, 0.1])]
    with torch.no_grad():
        fast = compressor(x, SR, *params)
    tracked = compressor(x.clone().requires_grad_(), SR, *params)
    torch.testing.assert_close(fast, tracked.detach())


@pytest.mark.parametrize("shape", [(2, 1000), (1, 3, 1000)])
def test_rejects_wrong_shapes(shape):
    with pytest.raises(ValueError, match="batch, channels"):
        compressor(torch.zeros(shape), SR, -20.0, 4.0, 10.0, 100.0, 6.0)


def test_rejects_parameters_of_the_wrong_batch_size():
    with pytest.raises(ValueError, match="threshold_db"):
        compressor(torch.zeros(2, 1, 100), SR, torch.zeros(3), 4.0, 10.0, 100.0, 6.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.randn(2, 2, 5000, generator=torch.Generator().manual_seed(8))
    params = [torch.tensor(v) for v in ([-20.0, -10.0], [4.0, 8.0], [1.0, 5.0], [30.0, 100.0], [6.0, 0.1])]
    on_cuda = compressor(x.cuda(), SR, *(p.cuda() for p in params))
    assert on_cuda.is_cuda
    torch.testing.assert_close(on_cuda.cpu(), compressor(x, SR, *params))
