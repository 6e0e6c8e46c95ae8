"""Pan laws and stereo width, checked against their definitions."""

import math

import pytest
import torch

from mixing.dsp.pan import pan, pan_gains, pan_pct_for_gains, stereo_width

SAMPLE_RATE = 44100
MINUS_3_DB = 10 ** (-3.0103 / 20)


def noise(batch: int, channels: int, samples: int = 4096, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, channels, samples, generator=torch.Generator().manual_seed(seed))


def test_mono_centre_is_minus_3_db_on_each_side():
    x = noise(1, 1)
    y = pan(x, SAMPLE_RATE, torch.tensor([0.0]))
    torch.testing.assert_close(y, x.expand(1, 2, -1) * MINUS_3_DB, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("pan_pct, loud, silent", [(-100.0, 0, 1), (100.0, 1, 0)])
def test_mono_full_pan_puts_everything_on_one_side(pan_pct, loud, silent):
    x = noise(1, 1)
    y = pan(x, SAMPLE_RATE, torch.tensor([pan_pct]))
    torch.testing.assert_close(y[:, loud], x[:, 0], atol=1e-6, rtol=1e-6)
    assert y[:, silent].abs().max().item() < 1e-6


@pytest.mark.parametrize("pan_pct", [-100.0, -70.0, -20.0, 0.0, 35.0, 100.0])
def test_mono_pan_keeps_power_constant(pan_pct):
    gains = pan_gains(torch.tensor([pan_pct]), channels=1)
    assert gains.square().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_stereo_balance_is_unity_at_centre():
    x = noise(1, 2)
    torch.testing.assert_close(pan(x, SAMPLE_RATE, torch.tensor([0.0])), x)


@pytest.mark.parametrize("pan_pct, kept, silenced", [(-100.0, 0, 1), (100.0, 1, 0)])
def test_stereo_full_balance_silences_the_other_channel(pan_pct, kept, silenced):
    x = noise(1, 2)
    y = pan(x, SAMPLE_RATE, torch.tensor([pan_pct]))
    torch.testing.assert_close(y[:, kept], x[:, kept])
    assert y[:, silenced].abs().max().item() < 1e-6


def test_stereo_half_right_attenuates_only_left_by_3_db():
    gains = pan_gains(torch.tensor([50.0]), channels=2)[0]
    assert gains[0].item() == pytest.approx(MINUS_3_DB, abs=1e-4)
    assert gains[1].item() == 1.0


def test_pan_applies_each_items_own_position():
    x = noise(3, 1)
    y = pan(x, SAMPLE_RATE, torch.tensor([-100.0, 0.0, 100.0]))
    assert y[0, 1].abs().max().item() < 1e-6 and y[2, 0].abs().max().item() < 1e-6
    torch.testing.assert_close(y[1, 0], y[1, 1])


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("pan_pct", [-100.0, 0.0, 100.0])
def test_pan_gradient_is_finite_at_the_ends_and_centre(channels, pan_pct):
    position = torch.tensor([pan_pct], requires_grad=True)
    pan(noise(1, channels), SAMPLE_RATE, position)[:, 0].sum().backward()
    assert torch.isfinite(position.grad).all()


def test_pan_rejects_more_than_two_channels():
    with pytest.raises(ValueError, match="channels 1 or 2"):
        pan(noise(1, 3), SAMPLE_RATE, torch.tensor([0.0]))


def test_width_zero_folds_to_mono():
    y = stereo_width(noise(2, 2), SAMPLE_RATE, torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(y[:, 0], y[:, 1], atol=0, rtol=0)


def test_width_100_leaves_signal_unchanged():
    x = noise(2, 2)
    torch.testing.assert_close(stereo_width(x, SAMPLE_RATE, torch.tensor([100.0, 100.0])), x, atol=0, rtol=0)


def test_width_200_doubles_side_and_keeps_mid():
    x = noise(1, 2)
    y = stereo_width(x, SAMPLE_RATE, torch.tensor([200.0]))
    torch.testing.assert_close(y[:, 0] + y[:, 1], x[:, 0] + x[:, 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(y[:, 0] - y[:, 1], 2 * (x[:, 0] - x[:, 1]), atol=1e-5, rtol=0)


def test_width_rejects_mono():
    with pytest.raises(ValueError, match="batch, 2, samples"):
        stereo_width(noise(1, 1), SAMPLE_RATE, torch.tensor([100.0]))


def test_balance_law_follows_cosine_between_centre_and_edge():
    gains = pan_gains(torch.tensor([-25.0]), channels=2)[0]
    assert gains[0].item() == 1.0
    assert gains[1].item() == pytest.approx(math.cos(math.pi / 8), abs=1e-6)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("pan_pct", [-100.0, -62.5, -10.0, 0.0, 7.0, 45.0, 100.0])
def test_pan_pct_for_gains_inverts_the_pan_law_at_any_overall_gain(channels, pan_pct):
    left, right = (float(g) for g in pan_gains(torch.tensor([pan_pct], dtype=torch.float64), channels)[0])
    assert pan_pct_for_gains(3.0 * left, 3.0 * right, channels) == pytest.approx(pan_pct, abs=1e-6)
