"""The reverb bus: its impulse response's decay, pre-delay and damping, and a send at its off value."""

import math

import pytest
import torch

from mixing.dsp.console import IncrementalRenderer
from mixing.dsp.reverb import band_masks, impulse_response, reverb_return
from mixing.params import REVERB_SEND_OFF_DB, MixParams

SAMPLE_RATE = 16000


def _time_to_minus_60_db_s(ir: torch.Tensor) -> torch.Tensor:
    """Per channel, where the backward-integrated energy (Schroeder's decay curve) first falls 60 dB."""
    remaining = ir.pow(2).flip(-1).cumsum(-1).flip(-1)
    decay_db = 10.0 * torch.log10(remaining / remaining[..., :1])
    return (decay_db > -60.0).sum(-1).double() / SAMPLE_RATE


@pytest.mark.parametrize("decay_s", [0.5, 2.0])
def test_energy_decay_reaches_minus_60_db_at_the_rt60(decay_s):
    # Damping far above Nyquist: every band decays at decay_s.
    ir = impulse_response(decay_s, 0.0, 1e9, SAMPLE_RATE)
    assert _time_to_minus_60_db_s(ir) == pytest.approx(torch.full((2,), decay_s, dtype=torch.float64), rel=0.1)


def test_each_channel_has_unit_energy_and_the_channels_are_decorrelated():
    ir = impulse_response(1.0, 0.0, 6000.0, SAMPLE_RATE)
    assert ir.pow(2).sum(-1) == pytest.approx(torch.ones(2), rel=1e-5)
    # Independent noise: the normalized correlation of the channels is of order 1 / sqrt(effective samples).
    assert abs(float((ir[0] * ir[1]).sum())) < 0.1


def test_pre_delay_shifts_the_onset_by_the_given_ms():
    plain = impulse_response(1.0, 0.0, 6000.0, SAMPLE_RATE)
    delayed = impulse_response(1.0, 25.0, 6000.0, SAMPLE_RATE)
    shift = 25 * SAMPLE_RATE // 1000  # 400 samples
    assert torch.all(delayed[:, :shift] == 0)
    assert torch.equal(delayed[:, shift:], plain)


def _band_decay_db_per_s(ir: torch.Tensor, low_hz: float, high_hz: float) -> float:
    """The slope of a band's level over time (dB/s) from an STFT of the response, over its first 40 dB."""
    window = 1024
    spec = torch.stft(ir, window, window // 4, window=torch.hann_window(window), return_complex=True)
    freqs = torch.fft.rfftfreq(window, 1.0 / SAMPLE_RATE)
    band = (freqs >= low_hz) & (freqs < high_hz)
    level_db = 10.0 * torch.log10(spec.abs().pow(2)[:, band].sum(dim=(0, 1)))
    frames = torch.arange(level_db.numel(), dtype=torch.float64) * (window // 4) / SAMPLE_RATE
    within = (level_db > level_db.max() - 40.0) & (frames > window / SAMPLE_RATE)
    slope = torch.linalg.lstsq(torch.stack([frames[within], torch.ones_like(frames[within])], 1),
                               level_db[within].double().unsqueeze(1)).solution[0, 0]
    return float(slope)


def test_damping_makes_the_high_band_decay_faster_than_the_low_band():
    ir = impulse_response(2.0, 0.0, 1000.0, SAMPLE_RATE)
    low, high = _band_decay_db_per_s(ir, 100.0, 400.0), _band_decay_db_per_s(ir, 3000.0, 6000.0)
    # An RT60 of T falls 60 / T dB per second: about 2 s low (30 dB/s), about 0.2 s at 3-6 kHz (300 dB/s).
    assert low == pytest.approx(-60.0 / 2.0, rel=0.25)
    assert high < 5 * low


def test_band_masks_sum_to_one():
    masks, centres_hz = band_masks(4096, SAMPLE_RATE)
    assert masks.sum(0) == pytest.approx(torch.ones(masks.shape[1]), abs=1e-6)
    assert centres_hz[-1] == pytest.approx(SAMPLE_RATE / 2)


def test_return_of_an_impulse_is_the_response_at_the_return_level():
    send = torch.zeros(2, SAMPLE_RATE * 3)
    send[:, 0] = 1.0
    wet = reverb_return(send, SAMPLE_RATE, 1.0, 10.0, 6000.0, -6.0)
    ir = impulse_response(1.0, 10.0, 6000.0, SAMPLE_RATE)
    assert wet[:, :ir.shape[-1]] == pytest.approx(ir * 10.0 ** (-6.0 / 20.0), abs=1e-5)


def _tracks(seconds: float = 1.0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    samples = int(seconds * SAMPLE_RATE)
    return [0.1 * torch.randn(1, samples, generator=generator), 0.1 * torch.randn(2, samples, generator=generator)]


def test_a_send_at_its_off_value_is_bit_identical_to_no_reverb():
    tracks = _tracks()
    # A version-5 preset, which knew no reverb, loads with every send off.
    plain = MixParams.from_preset({"schema_version": 5, "tracks": [{"params": {}}, {"params": {}}]})
    assert [values["reverb_send_db"] for values in plain.tracks] == [REVERB_SEND_OFF_DB] * 2
    reverb_set = MixParams.default(2)
    reverb_set.master.update(master_reverb_decay_s=3.0, master_reverb_return_db=6.0)
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    assert torch.equal(IncrementalRenderer(tracks, SAMPLE_RATE).render(plain), renderer.render(reverb_set))
    assert renderer._send_sum is None


def test_a_send_moved_on_and_back_off_renders_as_before_and_reruns_no_strip():
    renderer = IncrementalRenderer(_tracks(), SAMPLE_RATE)
    params = MixParams.default(2)
    dry = renderer.render(params)
    params.tracks[1]["reverb_send_db"] = -6.0
    wet = renderer.render(params)
    params.tracks[1]["reverb_send_db"] = REVERB_SEND_OFF_DB
    again = renderer.render(params)
    assert renderer.processed_tracks == 2
    assert torch.equal(again, dry)
    # The return adds energy that the loudness stage takes back: the mix differs, at the same loudness.
    assert float((wet - dry).pow(2).mean()) > 1e-3 * float(dry.pow(2).mean())


def test_the_send_sum_matches_a_direct_mix_of_the_sends():
    tracks = _tracks()
    params = MixParams.default(2)
    params.master["master_loudness_lufs"] = -20.0
    params.tracks[0]["reverb_send_db"] = -12.0
    params.tracks[1]["reverb_send_db"] = -3.0
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    renderer.render(params)
    mono, stereo = renderer.strip_outputs(params)
    # At centre a mono track goes to each channel at -3 dB, a stereo one as it is.
    expected = torch.cat([mono, mono]) * math.sqrt(0.5) * 10 ** (-12 / 20) + stereo * 10 ** (-3 / 20)
    assert renderer._send_sum.float() == pytest.approx(expected, abs=1e-6)
