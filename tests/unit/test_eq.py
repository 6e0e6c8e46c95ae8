"""The 6-band EQ measured with sines and impulses through both engines (frequency domain and exact IIR)."""

import math

import numpy as np
import pytest
import scipy.signal
import torch

from mixing.dsp import eq
from mixing.dsp.eq import band_coefficients, eq_param_names, parametric_eq, parametric_eq_iir, schema_tail_samples
from mixing.params import EQ_BANDS, TRACK_SPECS

SAMPLE_RATE = 44100
ENGINES = {"frequency_domain": parametric_eq, "exact_iir": parametric_eq_iir}


def flat_eq(batch: int = 1, **values_in_units) -> dict[str, torch.Tensor]:
    """Schema defaults (0 dB everywhere) with the given EQ parameters changed, each of shape (batch,)."""
    params = {name: torch.full((batch,), TRACK_SPECS[name].default) for name in eq_param_names()}
    for name, value in values_in_units.items():
        params[name] = torch.full((batch,), float(value))
    return params


def sine(freq_hz: float, seconds: float = 1.0, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    t = torch.arange(int(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return (0.5 * torch.sin(2 * math.pi * freq_hz * t)).float().reshape(1, 1, -1)


def steady_gain_db(engine, freq_hz: float, params, sample_rate: int = SAMPLE_RATE) -> float:
    """Gain of the EQ for a sine at ``freq_hz``, over the last half second (whole cycles for even frequencies)."""
    x = sine(freq_hz, 1.5, sample_rate)
    y = engine(x, sample_rate, params)
    window = slice(-sample_rate // 2, None)
    return 10 * math.log10(
        y[..., window].double().square().mean().item() / x[..., window].double().square().mean().item()
    )


PEAK_CASES = [("band1", 200.0), ("band2", 1000.0), ("band3", 3000.0), ("band4", 8000.0)]


@pytest.mark.parametrize("engine", ENGINES.values(), ids=ENGINES.keys())
@pytest.mark.parametrize("band, centre_hz", PEAK_CASES)
@pytest.mark.parametrize("gain_db", [9.0, -12.0])
@pytest.mark.parametrize("q", [0.7, 4.0])
def test_peak_band_gain_at_centre_equals_gain_db(engine, band, centre_hz, gain_db, q):
    params = flat_eq(**{f"eq_{band}_freq_hz": centre_hz, f"eq_{band}_gain_db": gain_db, f"eq_{band}_q": q})
    assert steady_gain_db(engine, centre_hz, params) == pytest.approx(gain_db, abs=0.5)


@pytest.mark.parametrize("engine", ENGINES.values(), ids=ENGINES.keys())
@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_peak_band_gain_holds_at_other_sample_rates(engine, sample_rate):
    params = flat_eq(eq_band3_freq_hz=5000.0, eq_band3_gain_db=6.0, eq_band3_q=2.0)
    assert steady_gain_db(engine, 5000.0, params, sample_rate) == pytest.approx(6.0, abs=0.5)


@pytest.mark.parametrize("engine", ENGINES.values(), ids=ENGINES.keys())
@pytest.mark.parametrize("gain_db", [12.0, -12.0])
def test_low_shelf_reaches_gain_below_and_unity_above(engine, gain_db):
    params = flat_eq(eq_low_shelf_freq_hz=500.0, eq_low_shelf_gain_db=gain_db)
    assert steady_gain_db(engine, 20.0, params) == pytest.approx(gain_db, abs=0.5)
    assert steady_gain_db(engine, 500.0, params) == pytest.approx(gain_db / 2, abs=0.5)
    assert steady_gain_db(engine, 10000.0, params) == pytest.approx(0.0, abs=0.5)


@pytest.mark.parametrize("engine", ENGINES.values(), ids=ENGINES.keys())
@pytest.mark.parametrize("gain_db", [12.0, -12.0])
def test_high_shelf_reaches_gain_above_and_unity_below(engine, gain_db):
    params = flat_eq(eq_high_shelf_freq_hz=2000.0, eq_high_shelf_gain_db=gain_db)
    assert steady_gain_db(engine, 18000.0, params) == pytest.approx(gain_db, abs=0.5)
    assert steady_gain_db(engine, 2000.0, params) == pytest.approx(gain_db / 2, abs=0.5)
    assert steady_gain_db(engine, 100.0, params) == pytest.approx(0.0, abs=0.5)


@pytest.mark.parametrize("engine", ENGINES.values(), ids=ENGINES.keys())
def test_flat_eq_leaves_signal_unchanged(engine):
    x = torch.randn(2, 2, 20000, generator=torch.Generator().manual_seed(0)) * 0.3
    torch.testing.assert_close(engine(x, SAMPLE_RATE, flat_eq(2)), x, atol=1e-5, rtol=0)


def extreme_eq(batch: int = 1) -> dict[str, torch.Tensor]:
    # The slowest ring-out the schema allows (lowest band1 frequency, highest Q,
    # full boost) plus strong settings on every other band.
    values = {}
    for (key, *_), (freq_hz, gain_db, q) in zip(
        EQ_BANDS,
        [
            (30.0, 18.0, 0.1),
            (40.0, 18.0, 8.0),
            (700.0, -9.0, 1.0),
            (2500.0, 6.0, 3.0),
            (9000.0, -6.0, 0.5),
            (12000.0, 9.0, 1.5),
        ],
        strict=True,
    ):
        values.update({f"eq_{key}_freq_hz": freq_hz, f"eq_{key}_gain_db": gain_db, f"eq_{key}_q": q})
    return flat_eq(batch, **values)


def test_frequency_domain_eq_matches_exact_iir():
    x = torch.randn(1, 2, 5 * SAMPLE_RATE, generator=torch.Generator().manual_seed(1)) * 0.1
    params = extreme_eq()
    exact = parametric_eq_iir(x, SAMPLE_RATE, params).double()
    error_db = 10 * math.log10(
        ((parametric_eq(x, SAMPLE_RATE, params).double() - exact).square().sum() / exact.square().sum()).item()
    )
    assert error_db < -60


def test_ring_out_does_not_wrap_onto_the_start_of_a_short_excerpt():
    x = torch.zeros(1, 1, 4096)
    x[..., -1] = 1.0
    y = parametric_eq(x, SAMPLE_RATE, extreme_eq())
    assert y[..., :-1].abs().max().item() < 1e-4


def test_schema_tail_covers_the_slowest_band():
    # 40 Hz at Q 8 decays by 60 dB in about 1.2 s.
    assert 1.0 * SAMPLE_RATE < schema_tail_samples(SAMPLE_RATE) < 3.0 * SAMPLE_RATE


def test_gradients_reach_every_eq_parameter():
    params = {name: value.clone().requires_grad_() for name, value in extreme_eq().items()}
    x = torch.randn(1, 1, 8192, generator=torch.Generator().manual_seed(2))
    parametric_eq(x, SAMPLE_RATE, params).square().mean().backward()
    for name, value in params.items():
        assert torch.isfinite(value.grad).all() and value.grad.abs().item() > 0, name


@pytest.mark.parametrize("engine", ENGINES.values(), ids=ENGINES.keys())
def test_rejects_signal_without_batch_dimension(engine):
    with pytest.raises(ValueError, match="batch, channels, samples"):
        engine(torch.zeros(2, 100), SAMPLE_RATE, flat_eq())


def test_exact_iir_matches_scipy_sosfilt():
    x = torch.randn(2, 2, 20000, generator=torch.Generator().manual_seed(3)) * 0.1
    params = extreme_eq(2)
    params["eq_band2_gain_db"] = torch.tensor([-9.0, 4.0])
    expected = []
    for item in range(2):
        coefficients = band_coefficients({name: value[item : item + 1] for name, value in params.items()}, SAMPLE_RATE)
        sos = np.stack([torch.cat([b[0], a[0]]).numpy() for b, a in coefficients])
        expected.append(scipy.signal.sosfilt(sos, x[item].double().numpy(), axis=-1))
    torch.testing.assert_close(
        parametric_eq_iir(x, SAMPLE_RATE, params).double(), torch.from_numpy(np.stack(expected)), atol=1e-6, rtol=0
    )


def test_exact_iir_through_silences_and_flat_bands_matches_scipy_sosfilt():
    # Sound, then 3 s of digital silence: the ringing decays and its state is flushed under 1e-30, unheard.
    x = torch.zeros(1, 2, 4 * SAMPLE_RATE)
    x[..., :SAMPLE_RATE] = torch.randn(1, 2, SAMPLE_RATE, generator=torch.Generator().manual_seed(5)) * 0.1
    params = extreme_eq(1)
    params["eq_band2_gain_db"] = torch.tensor([0.0])  # a flat band: skipped, exactly as filtering by it
    coefficients = band_coefficients(params, SAMPLE_RATE)
    sos = np.stack([torch.cat([b[0], a[0]]).numpy() for b, a in coefficients])
    expected = scipy.signal.sosfilt(sos, x[0].double().numpy(), axis=-1)
    filtered = parametric_eq_iir(x, SAMPLE_RATE, params)[0]
    torch.testing.assert_close(filtered.double(), torch.from_numpy(expected), atol=1e-6, rtol=0)


@pytest.mark.parametrize("samples, tail, expected", [
    (180 * 44100, 11025, 2**23),  # the power of two, 5 % over the fast length 7962624
    (441000, 4096, 2**4 * 3**2 * 5**5),  # an excerpt: the fast length 450000, not 2^19
    (2**20 + 1, 0, 2**5 * 3**8 * 5),  # 2^21 would be twice as long: the next length with factors 2, 3 and 5
])
def test_fft_size_takes_the_power_of_two_unless_it_is_far_longer(samples, tail, expected):
    assert eq.fft_size(samples, tail) == expected
