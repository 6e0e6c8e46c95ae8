"""BS.1770-4 integrated loudness against the standard's figures and pyloudnorm."""
import math

import numpy as np
import pyloudnorm
import pytest
import torch

from mixing.loudness import (
    CHANNEL_WEIGHTS,
    MAX_TRIM_GAIN_DB,
    gating_block_powers,
    integrated_loudness_lufs,
    k_weighting_sos,
    normalize_to_lufs,
    trim_tracks_in_place,
    trim_tracks_to_input_level,
)
from mixing.params import TRACK_INPUT_LUFS

SR = 44100


def sine(freq_hz: float, amplitude: float, seconds: float = 3.0, sample_rate: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def test_k_weighting_at_48_khz_equals_the_bs1770_table():
    # ITU-R BS.1770-4, tables 1 and 2: (b0, b1, b2, 1, a1, a2) per stage.
    table = [
        [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
        [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
    ]
    np.testing.assert_allclose(k_weighting_sos(48000), table, atol=1e-9)


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_full_scale_997_hz_sine_in_one_channel_reads_minus_3_01_lufs(sample_rate):
    # The standard's calibration point.
    full_scale = sine(997, 1.0, sample_rate=sample_rate)[None]
    assert integrated_loudness_lufs(full_scale, sample_rate) == pytest.approx(-3.01, abs=0.02)


def _signals(sample_rate: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    seconds = 6.0
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    envelope = np.where(t < seconds / 2, 1.0, 0.01)  # the quiet half falls under the relative gate
    return {
        "low sine, mono": sine(60, 0.5, seconds, sample_rate)[None],
        "stereo sines": np.stack([sine(1000, 0.3, seconds, sample_rate), sine(8000, 0.1, seconds, sample_rate)]),
        "brown noise": np.cumsum(rng.standard_normal((2, n)), axis=-1) * 1e-3,
        "gated noise": 0.3 * envelope * rng.standard_normal((2, n)),
        "quiet noise": 1e-3 * rng.standard_normal((2, n)),
    }


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_matches_pyloudnorm_within_a_tenth_of_a_lu(sample_rate):
    meter = pyloudnorm.Meter(sample_rate)
    for name, audio in _signals(sample_rate).items():
        ours = integrated_loudness_lufs(audio, sample_rate)
        theirs = meter.integrated_loudness(audio.T)
        assert ours == pytest.approx(theirs, abs=0.1), name


def test_relative_gate_drops_a_much_quieter_second_half():
    loud = sine(1000, 0.5, seconds=3.0)
    audio = np.concatenate([loud, 0.001 * loud])[None]  # the quiet half is at about -69 LUFS, above the absolute gate
    # 27 blocks of 400 ms lie inside the loud half; 3 more straddle the edge with 3/4, 1/2 and 1/4 of its energy.
    expected_lufs = integrated_loudness_lufs(loud[None], SR) + 10 * math.log10((27 + 0.75 + 0.5 + 0.25) / 30)
    assert integrated_loudness_lufs(audio, SR) == pytest.approx(expected_lufs, abs=0.01)


def test_silence_and_sub_gate_audio_measure_minus_infinity():
    assert integrated_loudness_lufs(np.zeros((2, SR)), SR) == float("-inf")
    assert integrated_loudness_lufs(sine(1000, 1e-5)[None], SR) == float("-inf")


def test_audio_shorter_than_a_block_is_measured_as_one_block():
    short = sine(997, 1.0, seconds=0.2)[None]
    assert integrated_loudness_lufs(short, SR) == pytest.approx(-3.01, abs=0.1)


def test_tensors_and_arrays_measure_the_same():
    audio = np.stack([sine(440, 0.2), sine(550, 0.1)])
    assert integrated_loudness_lufs(torch.tensor(audio, dtype=torch.float32), SR) == pytest.approx(
        integrated_loudness_lufs(audio, SR), abs=1e-3
    )


@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_block_powers_of_several_channels_are_the_weighted_sum_of_each_channel_alone(channels):
    # Channels are filtered in pairs, an odd last one paired with itself: each must count once, with its weight.
    rng = np.random.default_rng(channels)
    audio = rng.standard_normal((channels, 2 * SR)) * rng.uniform(0.05, 0.5, (channels, 1))
    weights = CHANNEL_WEIGHTS[:channels]
    alone = sum(weight * gating_block_powers(channel[None], SR) for weight, channel in zip(weights, audio, strict=True))
    np.testing.assert_allclose(gating_block_powers(audio, SR), alone, rtol=1e-12)


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(channels, samples\)"):
        integrated_loudness_lufs(np.zeros(SR), SR)
    with pytest.raises(ValueError, match="at most 5 channels"):
        integrated_loudness_lufs(np.zeros((6, SR)), SR)


def test_normalize_to_lufs_reaches_the_target_and_reports_the_gain():
    audio = torch.tensor(np.stack([sine(300, 0.05), sine(300, 0.02)]), dtype=torch.float32)
    before = integrated_loudness_lufs(audio, SR)
    normalized, gain_db = normalize_to_lufs(audio, SR, -20.0)
    assert isinstance(normalized, torch.Tensor) and normalized.dtype == torch.float32
    assert integrated_loudness_lufs(normalized, SR) == pytest.approx(-20.0, abs=0.01)
    assert gain_db == pytest.approx(-20.0 - before, abs=1e-9)


def test_normalize_leaves_silence_alone():
    silence = torch.zeros(2, SR)
    normalized, gain_db = normalize_to_lufs(silence, SR, -14.0)
    assert gain_db == 0.0 and torch.equal(normalized, silence)


def test_trim_brings_stems_to_the_input_level_caps_boosts_and_skips_silence():
    loud = torch.tensor(sine(200, 0.9)[None], dtype=torch.float32)
    nearly_silent = torch.tensor(sine(200, 1e-3)[None], dtype=torch.float32)  # about -63 LUFS
    silent = torch.zeros(2, SR)
    trimmed, gains_db = trim_tracks_to_input_level([loud, nearly_silent, silent], SR)
    assert integrated_loudness_lufs(trimmed[0], SR) == pytest.approx(TRACK_INPUT_LUFS, abs=0.01)
    assert gains_db[1] == MAX_TRIM_GAIN_DB
    assert integrated_loudness_lufs(trimmed[1], SR) < TRACK_INPUT_LUFS - 1.0
    assert gains_db[2] == 0.0 and torch.equal(trimmed[2], silent)
    assert math.isclose(gains_db[0], TRACK_INPUT_LUFS - integrated_loudness_lufs(loud, SR), abs_tol=1e-9)


def test_trimming_in_place_gives_the_samples_and_trims_of_the_trim_to_input_level():
    generator = torch.Generator().manual_seed(3)
    tracks = [0.1 * torch.randn(2, 3 * SR, generator=generator),  # loud: trimmed down
              5e-4 * torch.randn(1, 3 * SR, generator=generator),  # quiet: raised by MAX_TRIM_GAIN_DB only
              torch.zeros(2, SR)]  # silent: left alone
    trimmed, trim_db = trim_tracks_to_input_level(tracks, SR)
    in_place = [track.clone() for track in tracks]
    storages = [track.untyped_storage().data_ptr() for track in in_place]
    in_place_db, loudness_lufs = trim_tracks_in_place(in_place, SR)
    assert in_place_db == trim_db
    assert trim_db[1] == MAX_TRIM_GAIN_DB and trim_db[2] == 0.0
    for before, after in zip(trimmed, in_place, strict=True):
        assert torch.equal(before, after)
    assert [track.untyped_storage().data_ptr() for track in in_place] == storages
    # The loudness after the trim, without measuring again: the target, the quiet track 30 dB up, silence.
    assert loudness_lufs[0] == pytest.approx(TRACK_INPUT_LUFS, abs=1e-9)
    assert loudness_lufs[1] == pytest.approx(integrated_loudness_lufs(in_place[1], SR), abs=1e-4)
    assert loudness_lufs[2] == float("-inf")
