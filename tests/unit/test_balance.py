"""Reference balance: levels and pans read off the reference's long-term spectra."""
import math

import pytest
import torch

from mixing.balance import balance_to_reference, band_matrix, cross_spectra, estimate_balance
from mixing.dsp.console import IncrementalRenderer
from mixing.dsp.pan import pan_gains
from mixing.expert import starting_params
from mixing.loudness import trim_tracks_to_input_level

SAMPLE_RATE = 44100
SECONDS = 6.0
# Four sources that own different parts of the spectrum, as stems of a song do.
BANDS_HZ = ((40.0, 160.0), (200.0, 900.0), (1200.0, 4000.0), (5000.0, 15000.0))
LEVELS_DB = (6.0, -4.0, 0.0, -2.0)
PANS_PCT = (0.0, -60.0, 40.0, 80.0)


def band_noise(low_hz: float, high_hz: float, seed: int, seconds: float = SECONDS) -> torch.Tensor:
    """Gaussian noise band-limited to [low_hz, high_hz] by zeroing FFT bins: (1, samples)."""
    samples = round(seconds * SAMPLE_RATE)
    generator = torch.Generator().manual_seed(seed)
    spectrum = torch.fft.rfft(torch.randn(samples, generator=generator, dtype=torch.float64))
    freqs = torch.fft.rfftfreq(samples, 1 / SAMPLE_RATE, dtype=torch.float64)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    audio = torch.fft.irfft(spectrum, samples)
    return (0.05 * audio / audio.pow(2).mean().sqrt()).float()[None]


def panned_mix(sources: list[torch.Tensor], levels_db, pans_pct) -> torch.Tensor:
    """Mono sources at the given levels and constant-power pans, summed: (2, samples)."""
    mix = torch.zeros(2, sources[0].shape[-1])
    for source, level_db, pan_pct in zip(sources, levels_db, pans_pct, strict=True):
        mix += pan_gains(torch.tensor([pan_pct]), 1)[0][:, None] * source * 10 ** (level_db / 20)
    return mix


@pytest.fixture(scope="module")
def tracks():
    return [band_noise(low, high, seed=i) for i, (low, high) in enumerate(BANDS_HZ)]


@pytest.fixture(scope="module")
def reference():
    # Other noise than the tracks': the reference holds other music, with the same spectra.
    others = [band_noise(low, high, seed=100 + i, seconds=8.0) for i, (low, high) in enumerate(BANDS_HZ)]
    return panned_mix(others, LEVELS_DB, PANS_PCT)


def test_bands_are_sixth_octaves_from_30_hz_to_16_khz_and_share_no_bin():
    bands = band_matrix(SAMPLE_RATE, 4096)
    freqs = torch.fft.rfftfreq(4096, 1 / SAMPLE_RATE, dtype=torch.float64)
    assert (bands.sum(dim=0) <= 1).all()
    covered = freqs[bands.sum(dim=0) > 0]
    assert covered.min() >= 30.0 and covered.max() < 16000.0
    # Above a few hundred Hz every sixth octave holds bins; there, consecutive bands step by 2^(1/6).
    centres = (bands @ freqs) / bands.sum(dim=1)
    high = centres[centres > 1000]
    assert torch.allclose(high[1:] / high[:-1], torch.full_like(high[1:], 2 ** (1 / 6)), rtol=0.05)


def test_cross_spectra_of_mono_repeat_its_power_and_of_opposite_channels_are_negative():
    mono = band_noise(100.0, 1000.0, seed=5)[None]
    spectra = cross_spectra(mono)
    assert torch.equal(spectra[0], spectra[1]) and torch.allclose(spectra[0], spectra[2])
    opposite = cross_spectra(torch.cat([mono, -mono], dim=1))
    assert torch.allclose(opposite[2], -opposite[0])


def test_levels_and_pans_of_a_mix_of_other_content_are_recovered(tracks, reference):
    estimate = estimate_balance([t[None] for t in tracks], reference[None], SAMPLE_RATE,
                                start_pan_pct=[0.0] * len(tracks))
    mean_db = sum(LEVELS_DB) / len(LEVELS_DB)
    for level_db, truth_db in zip(estimate.level_db, LEVELS_DB, strict=True):
        assert level_db == pytest.approx(truth_db - mean_db, abs=1.0)
    for pan_pct, truth_pct in zip(estimate.pan_pct, PANS_PCT, strict=True):
        assert pan_pct == pytest.approx(truth_pct, abs=5.0)


def test_the_prior_keeps_a_track_the_reference_lacks_from_being_buried(tracks):
    # No trace of the fourth source in the reference: only the prior speaks for its level.
    others = [band_noise(low, high, seed=200 + i) for i, (low, high) in enumerate(BANDS_HZ[:3])]
    reference = panned_mix(others, LEVELS_DB[:3], PANS_PCT[:3])
    estimate = estimate_balance([t[None] for t in tracks], reference[None], SAMPLE_RATE,
                                start_pan_pct=[0.0] * len(tracks), prior_sigma_db=6.0)
    assert max(estimate.level_db) - estimate.level_db[3] < 25.0


def test_a_mono_reference_moves_levels_and_keeps_the_start_pans(tracks, reference):
    mono = reference.mean(dim=0, keepdim=True).expand(2, -1)
    start_pans = [10.0, -20.0, 30.0, -40.0]
    estimate = estimate_balance([t[None] for t in tracks], mono[None], SAMPLE_RATE, start_pan_pct=start_pans,
                                match_stereo=False)
    assert estimate.pan_pct == start_pans
    assert estimate.level_db[0] > estimate.level_db[1]  # +6 dB against -4 dB in the reference


def test_balance_to_reference_moves_faders_and_pans_only(tracks, reference):
    trimmed, _ = trim_tracks_to_input_level(tracks, SAMPLE_RATE)
    start = starting_params(trimmed, SAMPLE_RATE, ["Bass", "Keys", "Guitar", "Hats"])
    balanced, estimate = balance_to_reference(start, trimmed, reference, SAMPLE_RATE)
    for before, after, level_db, pan_pct in zip(start.tracks, balanced.tracks, estimate.level_db, estimate.pan_pct,
                                                strict=True):
        assert after["gain_db"] == pytest.approx(before["gain_db"] + level_db)
        assert after["pan_pct"] == pan_pct
        assert {k: v for k, v in after.items() if k not in ("gain_db", "pan_pct")} == {
            k: v for k, v in before.items() if k not in ("gain_db", "pan_pct")}
    assert balanced.master == start.master
    assert all(math.isfinite(value) for row in balanced.tracks for value in row.values())


def test_balancing_to_a_reference_that_lacks_a_track_keeps_it_within_the_floor(tracks):
    # The reference holds only the bass: the estimate would sink the other three as far as the prior lets it.
    reference = panned_mix([band_noise(*BANDS_HZ[0], seed=300)], [0.0], [0.0])
    trimmed, _ = trim_tracks_to_input_level(tracks, SAMPLE_RATE)
    start = starting_params(trimmed, SAMPLE_RATE)
    balanced, _ = balance_to_reference(start, trimmed, reference, SAMPLE_RATE, max_level_drop_db=12.0)
    renderer = IncrementalRenderer(trimmed, SAMPLE_RATE)
    renderer.render(start)
    start_drop_db = max(renderer.track_levels_db) - min(renderer.track_levels_db)
    renderer.render(balanced)
    assert max(renderer.track_levels_db) - min(renderer.track_levels_db) <= max(12.0, start_drop_db) + 0.5
