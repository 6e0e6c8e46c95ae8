"""The whole console: track strip, master bus, the differentiable engine and the full-length renderer."""

import math

import pytest
import torch

from mixing.dsp.console import DifferentiableConsole, IncrementalRenderer, render_mix
from mixing.dsp.limiter import true_peak_dbtp
from mixing.dsp.stages import master_bus, param_columns, strip_before_pan, strips_before_pan, track_strip
from mixing.params import (
    LEARNABLE_MASTER_PARAMS,
    LEARNABLE_TRACK_PARAMS,
    MATCH_EQ_CENTRES_HZ,
    MATCH_EQ_GAIN_NAMES,
    MATCH_EQ_LR_NAMES,
    TRACK_PARAMS,
    MixParams,
    normalize_tensor,
)
from tests.signals import amplitude_at

SAMPLE_RATE = 44100


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tone_and_noise(channels: int, seconds: float, seed: int, level: float = 0.1) -> torch.Tensor:
    """A decaying, retriggered tone over noise, shape (channels, samples): enough dynamics for the compressor to act."""
    samples = int(seconds * SAMPLE_RATE)
    t = torch.arange(samples) / SAMPLE_RATE
    envelope = torch.exp(-8 * (t % 0.5))
    tone = torch.sin(2 * math.pi * (110 + 40 * seed) * t) * envelope
    return level * (tone + 0.3 * torch.randn(channels, samples, generator=generator(seed)))


def session(seconds: float) -> list[torch.Tensor]:
    return [tone_and_noise(1, seconds, 0), tone_and_noise(1, seconds, 1), tone_and_noise(2, seconds, 2)]


def busy_params(num_tracks: int = 3) -> MixParams:
    """Non-trivial EQ, compression and pan on every track and the master bus."""
    params = MixParams.default(num_tracks)
    for index, track in enumerate(params.tracks):
        track.update(
            gain_db=3.0 * index - 2.0,
            eq_low_shelf_gain_db=4.0,
            eq_band1_freq_hz=150.0 + 50 * index,
            eq_band1_gain_db=-6.0,
            eq_band1_q=2.0,
            eq_band3_gain_db=5.0,
            eq_high_shelf_gain_db=-4.0,
            comp_threshold_db=-30.0,
            comp_ratio=4.0,
            comp_attack_ms=5.0,
            comp_release_ms=120.0,
            pan_pct=[-60.0, 40.0, 25.0][index % 3],
        )
    params.master.update(
        master_eq_band2_gain_db=3.0,
        master_eq_high_shelf_gain_db=2.0,
        master_comp_threshold_db=-25.0,
        master_comp_ratio=2.0,
        master_width_pct=130.0,
        master_loudness_lufs=-30.0,
    )
    return params


def to_norm(params: MixParams) -> tuple[torch.Tensor, torch.Tensor]:
    track_values = {
        spec.name: torch.tensor([track[spec.name] for track in params.tracks]) for spec in LEARNABLE_TRACK_PARAMS
    }
    return normalize_tensor(track_values, LEARNABLE_TRACK_PARAMS), normalize_tensor(
        params.master, LEARNABLE_MASTER_PARAMS
    )


def error_db(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """Error energy relative to the reference's energy, in dB."""
    return 10 * math.log10(
        ((estimate.double() - reference.double()).square().sum() / reference.double().square().sum()).item()
    )


def strip_params(**values_in_units) -> dict[str, torch.Tensor]:
    values = {spec.name: spec.default for spec in TRACK_PARAMS} | values_in_units
    return {name: torch.tensor([float(value)]) for name, value in values.items()}


@pytest.mark.parametrize("exact_iir", [False, True])
def test_track_gain_is_exact(exact_iir):
    x = tone_and_noise(1, 0.2, 0).unsqueeze(0)
    y = track_strip(x, SAMPLE_RATE, strip_params(gain_db=6.0), exact_iir=exact_iir)
    expected = x * 10 ** (6.0 / 20) * math.cos(math.pi / 4)
    torch.testing.assert_close(y, expected.expand(1, 2, -1), atol=1e-5, rtol=1e-5)


def test_differentiable_console_eq_boosts_centre_by_gain_db():
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    track = (0.1 * torch.sin(2 * math.pi * 1000 * t) + 0.1 * torch.sin(2 * math.pi * 5000 * t)).reshape(1, -1)
    console = DifferentiableConsole([track], SAMPLE_RATE)
    ratios_db = []
    for gain_db in (0.0, 9.0):
        params = MixParams.default(1)
        params.tracks[0].update(eq_band2_freq_hz=1000.0, eq_band2_gain_db=gain_db, eq_band2_q=4.0)
        with torch.no_grad():
            left = console(*to_norm(params), -20.0)[0, SAMPLE_RATE // 2 :]
        ratios_db.append(20 * math.log10(amplitude_at(left, 1000.0) / amplitude_at(left, 5000.0)))
    assert ratios_db[1] - ratios_db[0] == pytest.approx(9.0, abs=0.5)


def test_differentiable_console_and_full_render_agree():
    tracks = session(10.0)
    params = busy_params()
    with torch.no_grad():
        differentiable = DifferentiableConsole(tracks, SAMPLE_RATE)(
            *to_norm(params), params.master["master_loudness_lufs"]
        )
    rendered = render_mix(tracks, params, SAMPLE_RATE)
    assert differentiable.shape == rendered.shape == (2, 10 * SAMPLE_RATE)
    assert error_db(differentiable, rendered) < -40


@pytest.mark.parametrize("amplitude", [0.0, 1.0, 4.0], ids=["silence", "full_scale", "plus_12_dbfs"])
def test_gradients_finite_through_the_whole_differentiable_console(amplitude):
    tracks = [
        amplitude * torch.sin(2 * math.pi * 220 * torch.arange(SAMPLE_RATE // 2) / SAMPLE_RATE).reshape(1, -1),
        amplitude * torch.ones(2, SAMPLE_RATE // 2),
    ]
    console = DifferentiableConsole(tracks, SAMPLE_RATE)
    track_norm, master_norm = to_norm(busy_params(2))
    track_norm.requires_grad_()
    master_norm.requires_grad_()
    mix = console(track_norm, master_norm, -14.0)
    assert torch.isfinite(mix).all()
    mix.square().mean().backward()
    assert torch.isfinite(track_norm.grad).all() and torch.isfinite(master_norm.grad).all()


def test_differentiable_console_batches_excerpts_like_single_runs():
    tracks = [
        track.reshape(track.shape[0], 2, -1).transpose(0, 1) for track in session(1.0)
    ]  # (excerpts=2, channels, samples)
    track_norm, master_norm = to_norm(busy_params())
    with torch.no_grad():
        batched = DifferentiableConsole(tracks, SAMPLE_RATE)(track_norm, master_norm, -20.0)
        singles = [
            DifferentiableConsole([track[i] for track in tracks], SAMPLE_RATE)(track_norm, master_norm, -20.0)
            for i in range(2)
        ]
    torch.testing.assert_close(batched, torch.stack(singles), atol=1e-5, rtol=1e-4)


def test_differentiable_console_rejects_wrong_parameter_count():
    console = DifferentiableConsole(session(0.1), SAMPLE_RATE)
    track_norm, master_norm = to_norm(busy_params())
    with pytest.raises(ValueError, match="track_norm"):
        console(track_norm[:2], master_norm, -14.0)


def test_render_respects_true_peak_ceiling_and_never_nans():
    tracks = [4.0 * track for track in session(2.0)]
    params = busy_params()
    params.master.update(master_loudness_lufs=-6.0, master_ceiling_dbtp=-1.0)
    mix = render_mix(tracks, params, SAMPLE_RATE)
    assert torch.isfinite(mix).all()
    assert true_peak_dbtp(mix, SAMPLE_RATE) <= -1.0 + 0.05


def test_render_of_silence_is_silence():
    mix = render_mix([torch.zeros(1, SAMPLE_RATE)], MixParams.default(1), SAMPLE_RATE)
    assert torch.isfinite(mix).all() and mix.abs().max().item() == 0.0


def test_width_zero_renders_identical_channels():
    params = busy_params()
    params.master["master_width_pct"] = 0.0
    mix = render_mix(session(1.0), params, SAMPLE_RATE)
    torch.testing.assert_close(mix[0], mix[1], atol=0, rtol=0)


@pytest.mark.parametrize("batch_tracks", [1, 2, 3])
def test_strips_in_batches_equal_each_track_through_its_own_strip(batch_tracks):
    # Mono and stereo interleaved: only tracks with the same channel count share a batch.
    tracks = [tone_and_noise(channels, 1.0, seed) for seed, channels in enumerate([1, 2, 1, 2, 2, 1])]
    rows = busy_params(len(tracks)).tracks
    processed = dict(strips_before_pan(tracks, rows, SAMPLE_RATE, exact_iir=True, batch_tracks=batch_tracks))
    assert sorted(processed) == list(range(len(tracks)))
    for position, (track, row) in enumerate(zip(tracks, rows, strict=True)):
        alone = strip_before_pan(track[None], SAMPLE_RATE, param_columns([row], TRACK_PARAMS, torch.device("cpu")),
                                 exact_iir=True)[0]
        torch.testing.assert_close(processed[position], alone, atol=1e-7, rtol=0)
        assert processed[position].untyped_storage().nbytes() == alone.untyped_storage().nbytes()


def test_track_levels_run_only_changed_strips_and_leave_the_next_render_as_a_fresh_one():
    tracks = session(2.0)
    params = busy_params()
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    renderer.render(params)
    params.tracks[1]["gain_db"] = -9.0
    params.tracks[2]["pan_pct"] = -70.0
    levels_db = renderer.track_levels(params)
    assert renderer.processed_tracks == 4
    fresh = IncrementalRenderer(tracks, SAMPLE_RATE)
    mix = fresh.render(params)
    assert levels_db == pytest.approx(fresh.track_levels_db, abs=1e-9)
    torch.testing.assert_close(renderer.render(params), mix, atol=1e-5, rtol=0)
    assert renderer.processed_tracks == 4


def test_incremental_render_reprocesses_only_the_changed_track():
    tracks = session(2.0)
    params = busy_params()
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    renderer.render(params)
    assert renderer.processed_tracks == 3

    params.tracks[1]["eq_band3_gain_db"] = -8.0
    incremental = renderer.render(params)
    assert renderer.processed_tracks == 4
    torch.testing.assert_close(incremental, render_mix(tracks, params, SAMPLE_RATE), atol=1e-5, rtol=0)

    params.tracks[0]["pan_pct"] = 90.0
    params.master["master_comp_ratio"] = 6.0
    incremental = renderer.render(params, active=[True, False, True])
    assert renderer.processed_tracks == 4
    torch.testing.assert_close(
        incremental,
        IncrementalRenderer(tracks, SAMPLE_RATE).render(params, active=[True, False, True]),
        atol=1e-5,
        rtol=0,
    )

    # Edited while muted, then unmuted: the running sum must hold exactly the new audio.
    params.tracks[1]["gain_db"] = 5.0
    renderer.render(params, active=[True, False, True])
    torch.testing.assert_close(renderer.render(params), render_mix(tracks, params, SAMPLE_RATE), atol=1e-5, rtol=0)
    assert renderer.processed_tracks == 5


# Every output kept (the followed ones are scaled), or only the latest (they are made again from their new rows,
# and the old ones to take them out of the sum, so only the audio is compared).
@pytest.mark.parametrize(("max_kept_bytes", "strips_run"), [(None, 1), (0, None)])
def test_a_fader_moved_with_its_threshold_is_followed_without_running_the_strip(max_kept_bytes, strips_run):
    tracks = session(2.0)
    params = busy_params()  # every compressor engaged
    params.tracks[1].update(comp_ratio=1.0)
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE, max_kept_bytes=max_kept_bytes)
    renderer.render(params)
    moved = MixParams([dict(row) for row in params.tracks], dict(params.master))
    moved.tracks[0].update(gain_db=params.tracks[0]["gain_db"] + 4.0, comp_threshold_db=-26.0)  # followed
    moved.tracks[1].update(gain_db=params.tracks[1]["gain_db"] - 3.0)  # compressor off: followed
    moved.tracks[2].update(gain_db=params.tracks[2]["gain_db"] + 4.0)  # threshold left: the strip runs again
    assert renderer.follow_fader_moves(moved) == [0, 1]
    assert renderer.follow_fader_moves(moved) == []
    mix = renderer.render(moved)
    fresh = IncrementalRenderer(tracks, SAMPLE_RATE)
    torch.testing.assert_close(mix, fresh.render(moved), atol=1e-5, rtol=0)
    assert renderer.track_levels_db == pytest.approx(fresh.track_levels_db, abs=1e-4)
    assert strips_run is None or renderer.processed_tracks == 3 + strips_run


def test_a_render_makes_each_evicted_output_once_when_the_store_holds_fewer_than_all():
    tracks = session(2.0)
    params = busy_params()
    one_stereo_and_one_mono = 4 * (tracks[2].numel() + tracks[0].numel())
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE, max_kept_bytes=one_stereo_and_one_mono)
    renderer.track_levels(params)  # as pinning the levels leaves it: every strip made, one evicted, no sum yet
    assert renderer.kept_strip_bytes <= one_stereo_and_one_mono
    moved = MixParams([dict(row) for row in params.tracks], dict(params.master))
    for row in moved.tracks:
        row.update(gain_db=row["gain_db"] + 1.0, comp_threshold_db=row["comp_threshold_db"] + 1.0)
    assert renderer.follow_fader_moves(moved) == [0, 1, 2]
    mix = renderer.render(moved)
    # The kept outputs go into the sum before the evicted one is made again (which evicts one already summed).
    assert renderer.processed_tracks == 3 + 1
    torch.testing.assert_close(mix, IncrementalRenderer(tracks, SAMPLE_RATE).render(moved), atol=1e-5, rtol=0)


def test_muting_a_track_removes_it_from_the_mix():
    tracks = session(1.0)
    params = busy_params()
    params.master.update(master_comp_ratio=1.0)
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    only_first = renderer.render(params, active=[True, False, False])
    alone = IncrementalRenderer(tracks[:1], SAMPLE_RATE).render(MixParams([params.tracks[0]], params.master))
    torch.testing.assert_close(only_first, alone, atol=1e-6, rtol=0)


def test_track_levels_follow_gain():
    tracks = session(1.0)
    params = MixParams.default(3)
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    renderer.render(params)
    before = list(renderer.track_levels_db)
    params.tracks[2]["gain_db"] = -10.0
    renderer.render(params)
    assert renderer.track_levels_db[2] - before[2] == pytest.approx(-10.0, abs=1e-3)
    assert renderer.track_levels_db[:2] == before[:2]


def test_renderer_rejects_mismatched_inputs():
    renderer = IncrementalRenderer(session(0.1), SAMPLE_RATE)
    with pytest.raises(ValueError, match="track parameter sets"):
        renderer.render(MixParams.default(2))
    with pytest.raises(ValueError, match="active"):
        renderer.render(MixParams.default(3), active=[True])
    with pytest.raises(ValueError, match="differs"):
        IncrementalRenderer([torch.zeros(1, 100), torch.zeros(1, 99)], SAMPLE_RATE)


def master_params(**values_in_units) -> dict[str, torch.Tensor]:
    values = MixParams.default(1).master | values_in_units
    return {name: torch.tensor([float(value)]) for name, value in values.items()}


@pytest.mark.parametrize("balance_pct, attenuated", [(50.0, 0), (-50.0, 1), (100.0, 0)])
def test_master_balance_follows_the_stereo_balance_law(balance_pct, attenuated):
    mix = session(0.5)[2].unsqueeze(0)  # a stereo track as the mix: (1, 2, samples)
    centred = master_bus(mix, SAMPLE_RATE, master_params())
    balanced = master_bus(mix, SAMPLE_RATE, master_params(master_balance_pct=balance_pct))
    kept = 1 - attenuated
    torch.testing.assert_close(balanced[:, kept], centred[:, kept], atol=0, rtol=0)
    torch.testing.assert_close(
        balanced[:, attenuated], centred[:, attenuated] * math.cos(abs(balance_pct) / 100 * math.pi / 2),
        atol=1e-7, rtol=1e-6,
    )


def test_a_match_eq_left_right_gain_splits_between_the_channels():
    # A sine at band 10's centre in both channels; its gain 2 dB and left/right gain 6 dB give the left
    # channel 2 + 3 dB and the right 2 - 3 dB.
    band = 10
    freq_hz = MATCH_EQ_CENTRES_HZ[band]
    t = torch.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    mix = (0.1 * torch.sin(2 * math.pi * freq_hz * t)).expand(1, 2, -1).contiguous()
    out = master_bus(mix, SAMPLE_RATE, master_params(**{MATCH_EQ_GAIN_NAMES[band]: 2.0, MATCH_EQ_LR_NAMES[band]: 6.0}))
    middle = slice(SAMPLE_RATE // 2, 3 * SAMPLE_RATE // 2)
    for channel, expected_db in ((0, 5.0), (1, -1.0)):
        gain_db = 20 * math.log10(amplitude_at(out[0, channel, middle], freq_hz) / 0.1)
        assert gain_db == pytest.approx(expected_db, abs=0.1), channel


def test_rendered_balance_sets_the_channel_level_ratio():
    tracks = session(2.0)
    params = MixParams.default(3)
    params.master["master_loudness_lufs"] = -30.0  # far below the ceiling
    centred = render_mix(tracks, params, SAMPLE_RATE)
    params.master["master_balance_pct"] = 50.0
    balanced = render_mix(tracks, params, SAMPLE_RATE)

    def left_to_right_db(x: torch.Tensor) -> float:
        return 10 * math.log10(x[0].double().square().mean().item() / x[1].double().square().mean().item())

    assert left_to_right_db(balanced) - left_to_right_db(centred) == pytest.approx(
        20 * math.log10(math.cos(math.pi / 4)), abs=1e-3
    )


def matched_params() -> MixParams:
    """busy_params with a jagged match EQ and the balance off centre."""
    params = busy_params()
    gains_db = torch.linspace(-9.0, 9.0, len(MATCH_EQ_GAIN_NAMES)) * torch.tensor([1.0, -0.5]).repeat(12)
    params.master.update({name: float(gain) for name, gain in zip(MATCH_EQ_GAIN_NAMES, gains_db, strict=True)})
    params.master["master_balance_pct"] = -35.0
    params.master.update({name: 4.0 * math.sin(i) for i, name in enumerate(MATCH_EQ_LR_NAMES)})
    return params


def test_differentiable_console_and_full_render_agree_with_match_eq_and_balance():
    tracks = session(10.0)
    params = matched_params()
    fixed = {name: params.master[name] for name in (*MATCH_EQ_GAIN_NAMES, *MATCH_EQ_LR_NAMES, "master_balance_pct")}
    with torch.no_grad():
        differentiable = DifferentiableConsole(tracks, SAMPLE_RATE, master_settings=fixed)(
            *to_norm(params), params.master["master_loudness_lufs"]
        )
        without_settings = DifferentiableConsole(tracks, SAMPLE_RATE)(
            *to_norm(params), params.master["master_loudness_lufs"]
        )
    rendered = render_mix(tracks, params, SAMPLE_RATE)
    assert error_db(differentiable, rendered) < -40
    # The settings matter: left out, they take their (flat, centred) defaults.
    assert error_db(without_settings, rendered) > -10


def test_changing_only_master_settings_reprocesses_no_track():
    tracks = session(1.0)
    params = busy_params()
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)
    renderer.render(params)
    matched = matched_params()
    incremental = renderer.render(matched)
    assert renderer.processed_tracks == 3
    torch.testing.assert_close(incremental, render_mix(tracks, matched, SAMPLE_RATE), atol=1e-5, rtol=0)


def test_the_master_dynamics_run_again_only_when_the_sum_or_their_settings_change(monkeypatch):
    import mixing.dsp.console as console

    runs = []
    original = console.master_dynamics

    def counted(*args, **kwargs):
        runs.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(console, "master_dynamics", counted)
    tracks = session(1.0)
    params = busy_params()
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE)

    def rendered_as_from_scratch(edit) -> int:
        """Renders after ``edit`` (in place on params); checks the render and returns the dynamics runs it took."""
        edit(params)
        before = len(runs)
        incremental = renderer.render(params)
        taken = len(runs) - before
        torch.testing.assert_close(incremental, render_mix(tracks, params, SAMPLE_RATE), atol=1e-5, rtol=0)
        return taken

    assert rendered_as_from_scratch(lambda p: None) == 1
    # Later stages only: match EQ (twice, so its kept spectrum is reused), width, balance, loudness, ceiling.
    assert rendered_as_from_scratch(lambda p: p.master.update({MATCH_EQ_GAIN_NAMES[3]: 4.0})) == 0
    assert rendered_as_from_scratch(lambda p: p.master.update({MATCH_EQ_GAIN_NAMES[9]: -3.0})) == 0
    assert rendered_as_from_scratch(lambda p: p.master.update(
        master_width_pct=140.0, master_balance_pct=20.0, master_loudness_lufs=-12.0, master_ceiling_dbtp=-2.0)) == 0
    # Settings the dynamics stages read, and a change of the sum (a track's pan), run them again.
    assert rendered_as_from_scratch(lambda p: p.master.update(master_comp_threshold_db=-30.0)) == 1
    assert rendered_as_from_scratch(lambda p: p.master.update(master_expander_ratio=2.0)) == 1
    assert rendered_as_from_scratch(lambda p: p.master.update(master_eq_band2_gain_db=5.0)) == 1
    assert rendered_as_from_scratch(lambda p: p.tracks[0].update(pan_pct=77.0)) == 1
    assert rendered_as_from_scratch(lambda p: p.tracks[2].update(gain_db=-4.0)) == 1
