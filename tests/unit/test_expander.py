"""The master expander: static curve on steady tones, its range, its window, gradients, and its place in the bus."""
import math

import pytest
import torch

from mixing.dsp.expander import BLOCK_MS, RANGE_DB, WINDOW_MS, expander, moving_rms_db
from mixing.dsp.stages import master_bus, param_columns
from mixing.params import MASTER_PARAMS, MixParams
from tests.signals import sine

SR = 44100


def _tone(seconds: float, rms_db: float) -> torch.Tensor:
    """A stereo 440 Hz sine whose RMS level (mean square over both channels) is ``rms_db``: (1, 2, samples)."""
    return sine(440.0, seconds, sample_rate=SR, amplitude=10 ** (rms_db / 20) * math.sqrt(2), channels=2)[None]


def _gain_db(x: torch.Tensor, y: torch.Tensor, part: slice) -> float:
    return 10 * math.log10(float(y[..., part].double().square().mean() / x[..., part].double().square().mean()))


MIDDLE = slice(SR, 2 * SR)


@pytest.mark.parametrize(("level_db", "threshold_db", "ratio", "expected_db"), [
    (-30.0, -20.0, 2.0, -10.0),  # 10 dB under: every dB under becomes 2
    (-30.0, -24.0, 3.0, -12.0),  # 6 dB under at 3:1
    (-30.0, -28.0, 1.5, -1.0),
    (-30.0, -40.0, 3.0, 0.0),  # above the threshold: untouched
    (-40.0, -20.0, 3.0, -RANGE_DB),  # 40 dB of cut asked for, the range allows 12
])
def test_a_steady_tone_follows_the_static_curve(level_db, threshold_db, ratio, expected_db):
    x = _tone(3.0, level_db)
    y = expander(x, SR, torch.tensor([threshold_db]), torch.tensor([ratio]))
    assert _gain_db(x, y, MIDDLE) == pytest.approx(expected_db, abs=0.02)


def test_ratio_one_passes_the_signal_unchanged():
    x = torch.randn(2, 2, SR)
    assert expander(x, SR, torch.tensor([-10.0, -10.0]), torch.tensor([1.0, 1.0])) is x


def test_each_batch_item_has_its_own_settings():
    x = torch.cat([_tone(3.0, -30.0), _tone(3.0, -30.0)])
    y = expander(x, SR, torch.tensor([-20.0, -40.0]), torch.tensor([2.0, 2.0]))
    assert _gain_db(x[:1], y[:1], MIDDLE) == pytest.approx(-10.0, abs=0.02)
    assert _gain_db(x[1:], y[1:], MIDDLE) == pytest.approx(0.0, abs=1e-6)


def test_a_quiet_passage_is_lowered_and_the_loud_ones_around_it_are_not():
    loud, quiet = _tone(2.0, -20.0), _tone(2.0, -32.0)
    x = torch.cat([loud, quiet, loud], dim=-1)
    y = expander(x, SR, torch.tensor([-26.0]), torch.tensor([2.0]))
    assert _gain_db(x, y, slice(int(2.5 * SR), int(3.5 * SR))) == pytest.approx(-6.0, abs=0.05)
    # Half a window from the change on, the loud passages are untouched.
    edge = round(WINDOW_MS / 2000 * SR) + round(BLOCK_MS / 1000 * SR)
    assert _gain_db(x, y, slice(0, 2 * SR - edge)) == pytest.approx(0.0, abs=1e-6)
    assert _gain_db(x, y, slice(4 * SR + edge, 6 * SR)) == pytest.approx(0.0, abs=1e-6)


def test_the_level_is_the_windowed_mean_square_of_both_channels():
    x = torch.zeros(1, 2, 3 * SR)
    x[:, 0] = 0.1  # one channel at -20 dB: the linked level reads 3 dB lower
    level_db = moving_rms_db(x, SR)
    assert level_db.shape == (1, math.ceil(3 * SR / (BLOCK_MS / 1000 * SR)))
    assert float(level_db[0, level_db.shape[1] // 2]) == pytest.approx(-20.0 - 10 * math.log10(2), abs=1e-4)
    silence = moving_rms_db(torch.zeros(1, 2, SR), SR)
    assert torch.isfinite(silence).all()


def test_gradients_reach_the_input_and_both_settings():
    x = (_tone(1.0, -30.0) * torch.linspace(0.2, 1.0, SR)).requires_grad_()
    threshold_db = torch.tensor([-25.0], requires_grad=True)
    ratio = torch.tensor([2.0], requires_grad=True)
    expander(x, SR, threshold_db, ratio).square().sum().backward()
    for tensor in (x, threshold_db, ratio):
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    # A higher threshold lowers more of the signal; a higher ratio lowers it further.
    assert threshold_db.grad < 0 and ratio.grad < 0


def test_the_master_bus_expands_after_its_compressor():
    master = MixParams.default(1).master
    x = _tone(3.0, -30.0)
    flat = master_bus(x, SR, param_columns([master], MASTER_PARAMS, x.device))
    master.update(master_expander_threshold_db=-20.0, master_expander_ratio=2.0)
    expanded = master_bus(x, SR, param_columns([master], MASTER_PARAMS, x.device))
    assert _gain_db(flat, expanded, MIDDLE) == pytest.approx(-10.0, abs=0.02)
