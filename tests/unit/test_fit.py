"""Test-time fitting: it lowers the AF loss, keeps every track audible, reports progress and is deterministic."""
import math

import pytest
import torch

from mixing.dsp.console import IncrementalRenderer, render_mix
from mixing.expert import starting_params
from mixing.fit import _eq_gain_db_at, fit_params
from mixing.loudness import trim_tracks_to_input_level
from mixing.params import MixParams

SAMPLE_RATE = 44100


def _stems(seconds: float = 4.0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    gate = (torch.sin(2 * math.pi * 2 * t) > 0).float()  # rhythmic, so compressors and crest factor matter
    bass = torch.sin(2 * math.pi * 55 * t) * gate
    keys = sum(torch.sin(2 * math.pi * f * t) for f in (262, 330, 392)) / 3
    hats = torch.randn(t.shape, generator=generator) * (1 - gate)
    hats = hats - torch.roll(hats, 1)  # high-passed noise
    pad = torch.randn(2, t.shape[0], generator=generator) * 0.3
    tracks, _ = trim_tracks_to_input_level([bass[None], keys[None], hats[None], pad], SAMPLE_RATE)
    return tracks


def _reference(tracks: list[torch.Tensor]) -> torch.Tensor:
    params = MixParams.default(len(tracks))
    for row, gain_db, pan_pct in zip(params.tracks, (4.0, -6.0, -3.0, 0.0), (0.0, -60.0, 50.0, 0.0), strict=True):
        row.update(gain_db=gain_db, pan_pct=pan_pct)
    params.master.update(master_eq_high_shelf_gain_db=6.0, master_comp_threshold_db=-24.0, master_comp_ratio=3.0)
    return render_mix(tracks, params, SAMPLE_RATE)


@pytest.fixture(scope="module")
def session():
    tracks = _stems()
    return tracks, _reference(tracks)


def _fit(session, **kwargs):
    tracks, reference = session
    start = starting_params(tracks, SAMPLE_RATE)
    options = dict(iterations=6, time_budget_s=None, excerpt_count=2, excerpt_s=1.5, seed=3)
    return fit_params(tracks, reference, SAMPLE_RATE, start=start, **{**options, **kwargs})


def test_fitting_lowers_the_af_loss_below_the_start(session):
    result = _fit(session)
    assert result.loss < result.start_loss
    assert result.loss == min(result.history)
    assert math.isclose(sum(result.terms.values()), result.loss, rel_tol=1e-4)


def test_fixed_track_params_keep_their_start_values_while_the_rest_moves(session):
    tracks, _ = session
    start = starting_params(tracks, SAMPLE_RATE)
    free, fixed = _fit(session), _fit(session, fixed_track_params=("gain_db", "pan_pct"))
    assert fixed.loss < fixed.start_loss
    # The start's tie-breaking jitter (1e-4 of each range, normal) is all that separates them from the start.
    for name, spread in (("gain_db", 60.0), ("pan_pct", 200.0)):
        assert [row[name] for row in fixed.params.tracks] == pytest.approx([row[name] for row in start.tracks],
                                                                           abs=5e-4 * spread)
    assert any(abs(row["gain_db"] - before["gain_db"]) > 0.05 for row, before in zip(free.params.tracks,
                                                                                      start.tracks, strict=True))


def test_fitting_is_deterministic_for_a_seed(session):
    first, second = _fit(session), _fit(session)
    assert first.params.tracks == second.params.tracks
    assert first.params.master == second.params.master


def test_progress_is_reported_every_step_and_ends_complete(session):
    seen = []
    _fit(session, progress=seen.append)
    assert [event["iteration"] for event in seen] == list(range(7))
    fractions = [event["progress"] for event in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def _level_spread_db(tracks, params) -> float:
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    renderer.render(params)
    return max(renderer.track_levels_db) - min(renderer.track_levels_db)


def test_no_track_is_buried_below_the_balance_floor():
    # The reference has no hats at all, so the AF loss rewards burying them: without the floor the
    # search does (by fader, EQ or compressor); with it, every track's level after strip and pan stays
    # within the product's 25 dB of the loudest.
    tracks = _stems()
    params = MixParams.default(len(tracks))
    params.tracks[2].update(gain_db=-36.0, eq_high_shelf_gain_db=-18.0)
    reference = render_mix(tracks, params, SAMPLE_RATE)
    options = dict(learning_rate=0.5, iterations=15)
    assert _level_spread_db(tracks, _fit((tracks, reference), max_level_drop_db=200.0, **options).params) > 25.0
    assert _level_spread_db(tracks, _fit((tracks, reference), max_level_drop_db=20.0, **options).params) <= 25.0


def test_result_sets_the_output_loudness_to_the_reference(session):
    _, reference = session
    from mixing.loudness import integrated_loudness_lufs

    result = _fit(session, iterations=1)
    assert result.params.master["master_loudness_lufs"] == pytest.approx(
        integrated_loudness_lufs(reference, SAMPLE_RATE), abs=0.01
    )


def test_matching_eq_response_helper_reads_a_peak_at_its_centre():
    params = {name: torch.tensor([value]) for name, value in MixParams.default(1).master.items()}
    params["master_eq_band2_gain_db"] = torch.tensor([6.0])
    gain_db = _eq_gain_db_at(params, SAMPLE_RATE, torch.tensor([600.0]), "master_")[0]
    assert float(gain_db) == pytest.approx(6.0, abs=0.05)
