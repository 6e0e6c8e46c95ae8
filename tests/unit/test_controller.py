"""The controller network, its checkpoints and inference helpers."""
import math
import time

import pytest
import torch

from mixing import SAMPLE_RATE
from mixing.controller import (
    Controller,
    collate_sessions,
    default_config,
    load_checkpoint,
    norm_to_mix_params,
    pack_session,
    predict_params,
    save_checkpoint,
    tiny_config,
)
from mixing.controller.checkpoint import state_dict_sha256
from mixing.controller.model import mel_filterbank
from mixing.errors import CheckpointError
from mixing.params import LEARNABLE_MASTER_PARAMS, LEARNABLE_TRACK_PARAMS, MASTER_SPECS, SCHEMA_VERSION, MixParams

N_TRACK = len(LEARNABLE_TRACK_PARAMS)
N_MASTER = len(LEARNABLE_MASTER_PARAMS)
ONE_SECOND = SAMPLE_RATE


def build(config=None, seed=0) -> Controller:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Controller(**(config or tiny_config()))


def track(freq_hz: float, channels: int, samples: int = ONE_SECOND, seed: int = 0) -> torch.Tensor:
    """A sine plus a little noise, distinct per frequency; stereo tracks differ between channels."""
    generator = torch.Generator().manual_seed(seed)
    time_s = torch.arange(samples) / SAMPLE_RATE
    tone = 0.1 * torch.sin(2 * math.pi * freq_hz * time_s)
    noise = 0.01 * torch.randn(channels, samples, generator=generator)
    level = torch.linspace(1.0, 0.5, channels).unsqueeze(1)
    return level * tone + noise


def session(num_tracks: int, samples: int = ONE_SECOND, seed: int = 0) -> list[torch.Tensor]:
    return [track(110.0 * (i + 1), channels=1 + i % 2, samples=samples, seed=seed + i) for i in range(num_tracks)]


def reference(samples: int = ONE_SECOND, seed: int = 100) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.2 * torch.randn(2, samples, generator=generator) * torch.tensor([[1.0], [0.7]])


def run(model, sessions, references):
    tracks, track_mask, stereo = collate_sessions([pack_session(s) for s in sessions])
    with torch.no_grad():
        return model(tracks, track_mask, stereo, torch.stack(references))


@pytest.mark.parametrize("freq_hz", [200.0, 1000.0, 5000.0])
def test_a_sine_lands_in_the_band_centred_on_its_frequency(freq_hz):
    encoder = build().track_encoder
    sine = torch.sin(2 * math.pi * freq_hz * torch.arange(ONE_SECOND) / SAMPLE_RATE).unsqueeze(0)
    loudest_band = encoder.log_bands(sine)[0].mean(-1).argmax()
    band_centre_hz = encoder.filterbank[:, loudest_band].argmax() * SAMPLE_RATE / 2048
    assert abs(math.log2(band_centre_hz / freq_hz)) < 0.25


def test_doubling_the_amplitude_raises_every_band_by_log_two():
    encoder = build().track_encoder
    noise = 0.05 * torch.randn(1, ONE_SECOND, generator=torch.Generator().manual_seed(1))
    raised = encoder.log_bands(2 * noise) - encoder.log_bands(noise)
    assert torch.allclose(raised, torch.full_like(raised, math.log(2.0)), atol=1e-3)


def test_mel_filterbank_refuses_bands_narrower_than_a_bin():
    with pytest.raises(ValueError, match="too many"):
        mel_filterbank(2048, SAMPLE_RATE, 512)


def test_outputs_are_learnable_params_in_unit_range():
    model = build().eval()
    track_norm, master_norm = run(model, [session(3), session(5, seed=7)], [reference(), reference(seed=5)])
    assert track_norm.shape == (2, 5, N_TRACK)
    assert master_norm.shape == (2, N_MASTER)
    for norm in (track_norm, master_norm):
        assert torch.isfinite(norm).all()
        assert norm.min() >= 0.0 and norm.max() <= 1.0


def test_untrained_controller_predicts_about_the_schema_defaults():
    track_norm, master_norm = run(build().eval(), [session(4)], [reference()])
    track_defaults = torch.tensor([spec.default_norm for spec in LEARNABLE_TRACK_PARAMS])
    master_defaults = torch.tensor([spec.default_norm for spec in LEARNABLE_MASTER_PARAMS])
    # Defaults at 0 or 1 are approached only to within the sigmoid's starting margin.
    assert torch.allclose(track_norm[0], track_defaults.expand(4, -1), atol=0.05)
    assert torch.allclose(master_norm[0], master_defaults, atol=0.05)


def test_permuting_tracks_permutes_their_parameters_and_keeps_the_master():
    model = build().eval()
    tracks = session(6)
    order = [4, 1, 5, 0, 3, 2]
    track_norm, master_norm = run(model, [tracks], [reference()])
    permuted_norm, permuted_master = run(model, [[tracks[i] for i in order]], [reference()])
    assert torch.allclose(permuted_norm[0], track_norm[0, order], atol=1e-5)
    assert torch.allclose(permuted_master, master_norm, atol=1e-5)
    assert not torch.allclose(track_norm[0, 0], track_norm[0, 1], atol=1e-3), "tracks should get distinct parameters"


def test_padding_tracks_change_neither_real_tracks_nor_master():
    model = build().eval()
    alone_norm, alone_master = run(model, [session(3)], [reference()])
    # Batched with a longer session, the first one is padded with 4 silent, masked tracks.
    padded_norm, padded_master = run(model, [session(3), session(7, seed=3)], [reference(), reference(seed=9)])
    assert torch.allclose(padded_norm[0, :3], alone_norm[0], atol=1e-5)
    assert torch.allclose(padded_master[0], alone_master[0], atol=1e-5)
    defaults = torch.tensor([spec.default_norm for spec in LEARNABLE_TRACK_PARAMS])
    assert torch.equal(padded_norm[0, 3:], defaults.expand(4, -1))


def test_content_of_padding_tracks_is_ignored():
    model = build().eval()
    tracks, track_mask, stereo = collate_sessions([pack_session(session(2)), pack_session(session(4))])
    ref = torch.stack([reference(), reference(seed=9)])
    with torch.no_grad():
        clean = model(tracks, track_mask, stereo, ref)
        tracks[0, 2:] = torch.randn(2, 2, ONE_SECOND)
        stereo[0, 2:] = True
        noisy = model(tracks, track_mask, stereo, ref)
    assert torch.allclose(noisy[0][0, :2], clean[0][0, :2], atol=1e-6)
    assert torch.allclose(noisy[1], clean[1], atol=1e-6)


def test_second_channel_of_a_mono_track_is_ignored():
    model = build().eval()
    tracks, track_mask, stereo = collate_sessions([pack_session(session(3))])
    assert stereo.tolist() == [[False, True, False]]
    ref = reference().unsqueeze(0)
    with torch.no_grad():
        before = model(tracks, track_mask, stereo, ref)
        tracks[0, 0, 1] = torch.randn(ONE_SECOND)
        after = model(tracks, track_mask, stereo, ref)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])


def test_reference_changes_the_prediction():
    model = build().eval()
    quiet_top = reference()
    bright = quiet_top + 0.2 * torch.sin(2 * math.pi * 8000.0 * torch.arange(ONE_SECOND) / SAMPLE_RATE)
    first = run(model, [session(3)], [quiet_top])
    second = run(model, [session(3)], [bright])
    assert not torch.allclose(first[1], second[1], atol=1e-6)
    assert not torch.allclose(first[0], second[0], atol=1e-6)


def test_every_weight_gets_a_finite_gradient():
    model = build().train()
    tracks, track_mask, stereo = collate_sessions([pack_session(session(3)), pack_session(session(2))])
    track_norm, master_norm = model(tracks, track_mask, stereo, torch.stack([reference(), reference(seed=3)]))
    (track_norm.square().sum() + master_norm.square().sum()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_excerpts_of_any_length_from_one_fft_window_up():
    model = build().eval()
    for samples in (2048, 3000, 5 * ONE_SECOND + 17):
        track_norm, _ = run(model, [session(2, samples=samples)], [reference(samples=samples + 999)])
        assert track_norm.shape == (1, 2, N_TRACK) and torch.isfinite(track_norm).all()


@pytest.mark.parametrize(
    "tracks, track_mask, stereo, ref, message",
    [
        (torch.zeros(1, 2, 1, 4096), torch.ones(1, 2), torch.zeros(1, 2), torch.zeros(1, 2, 4096), "tracks of shape"),
        (torch.zeros(1, 2, 2, 4096), torch.ones(1, 3), torch.zeros(1, 2), torch.zeros(1, 2, 4096), "track_mask"),
        (torch.zeros(1, 2, 2, 4096), torch.ones(1, 2), torch.zeros(1, 2), torch.zeros(1, 1, 4096),
         "reference of shape"),
        (torch.zeros(1, 2, 2, 4096), torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2, 4096),
         "at least one real track"),
        (torch.zeros(1, 2, 2, 1000), torch.ones(1, 2), torch.zeros(1, 2), torch.zeros(1, 2, 4096), "at least 2048"),
    ],
)
def test_forward_rejects_bad_shapes(tracks, track_mask, stereo, ref, message):
    with pytest.raises(ValueError, match=message):
        build()(tracks, track_mask.bool(), stereo.bool(), ref)


def test_pack_session_rejects_tracks_of_unequal_length_or_too_many_channels():
    with pytest.raises(ValueError, match="samples"):
        pack_session([torch.zeros(1, 4096), torch.zeros(1, 4000)])
    with pytest.raises(ValueError, match="1 or 2 channels"):
        pack_session([torch.zeros(3, 4096)])


def test_predict_params_matches_the_batched_forward_and_restores_train_mode():
    model = build().train()
    tracks = session(3)
    track_norm, master_norm = predict_params(model, tracks, reference(), SAMPLE_RATE)
    assert model.training
    expected = run(model.eval(), [tracks], [reference()])
    assert track_norm.shape == (3, N_TRACK) and master_norm.shape == (N_MASTER,)
    assert torch.allclose(track_norm, expected[0][0], atol=1e-6)
    assert torch.allclose(master_norm, expected[1][0], atol=1e-6)


def test_predict_params_rejects_another_sample_rate():
    with pytest.raises(ValueError, match="48000 Hz"):
        predict_params(build(), session(2), reference(), 48000)


def test_norm_to_mix_params_maps_extremes_to_range_ends_and_fills_defaults():
    mix = norm_to_mix_params(torch.stack([torch.zeros(N_TRACK), torch.ones(N_TRACK)]), torch.ones(N_MASTER))
    for spec in LEARNABLE_TRACK_PARAMS:
        assert mix.tracks[0][spec.name] == pytest.approx(spec.min)
        assert mix.tracks[1][spec.name] == pytest.approx(spec.max)
    assert mix.master["master_comp_ratio"] == pytest.approx(MASTER_SPECS["master_comp_ratio"].max)
    assert mix.master["master_loudness_lufs"] == MASTER_SPECS["master_loudness_lufs"].default
    assert mix.master["master_ceiling_dbtp"] == MASTER_SPECS["master_ceiling_dbtp"].default
    # Every value must survive the preset validator, which rejects anything a rounding error outside the range.
    assert MixParams.from_preset(mix.to_preset()) == mix


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = build(seed=3)
    info = {"steps": 12, "data": "unit test noise", "wall_time_s": 1.5}
    save_checkpoint(tmp_path / "controller.pt", model, training_info=info)
    loaded = load_checkpoint(tmp_path / "controller.pt")
    assert type(loaded) is Controller and not loaded.training
    assert loaded.config == model.config and loaded.training_info == info
    expected = run(model.eval(), [session(3)], [reference()])
    actual = run(loaded, [session(3)], [reference()])
    assert torch.equal(actual[0], expected[0]) and torch.equal(actual[1], expected[1])


def test_save_checkpoint_rejects_training_info_that_is_not_json(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "c.pt", build(), training_info={"started": object()})
    assert list(tmp_path.iterdir()) == []


def _edited_checkpoint(tmp_path, edit):
    path = tmp_path / "controller.pt"
    save_checkpoint(path, build(), training_info={"steps": 1})
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)
    return path


def _change_a_weight(payload):
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name] = payload["state_dict"][name] + 1.0


def _shrink_the_model(payload):
    payload["config"]["embed_dim"] = 8
    payload["config"]["num_heads"] = 1


def _rename_a_track_param(payload):
    payload["track_param_names"][3] = "eq_low_shelf_gain"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.update(schema_version=SCHEMA_VERSION + 1), "schema version"),
        (_rename_a_track_param, "position 3"),
        (lambda p: p["master_param_names"].pop(), "names instead of"),
        (_change_a_weight, "checksum"),
        (lambda p: p["state_dict"].update(master_token=[0.0]), "checksum"),
        (_shrink_the_model, "do not fit the stored config"),
        (lambda p: p.update(model_class="Unet"), "unknown model class"),
        (lambda p: p.pop("state_dict_sha256"), "lacks state_dict_sha256"),
        (lambda p: p.update(format="something-else"), "not a Mixref controller checkpoint"),
    ],
)
def test_load_checkpoint_rejects_mismatched_checkpoints(tmp_path, edit, message):
    path = _edited_checkpoint(tmp_path, edit)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_load_checkpoint_rejects_corrupt_and_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")
    path = tmp_path / "controller.pt"
    save_checkpoint(path, build(), training_info={})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable controller checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"RIFF not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable controller checkpoint"):
        load_checkpoint(path)


def test_checksum_covers_names_and_values():
    state = build().state_dict()
    renamed = {("x" + name if i == 0 else name): t for i, (name, t) in enumerate(state.items())}
    nudged = dict(state, **{"master_token": state["master_token"] + 1e-7})
    assert state_dict_sha256(state) == state_dict_sha256(dict(reversed(state.items())))
    assert state_dict_sha256(renamed) != state_dict_sha256(state)
    assert state_dict_sha256(nudged) != state_dict_sha256(state)


def test_shipped_size_runs_on_ten_second_excerpts_within_the_checkpoint_budget(tmp_path, capsys):
    model = build(default_config()).eval()
    save_checkpoint(tmp_path / "default.pt", model, training_info={})
    checkpoint_mb = (tmp_path / "default.pt").stat().st_size / 1e6
    assert checkpoint_mb < 30.0
    tracks = session(8, samples=10 * ONE_SECOND)
    started = time.perf_counter()
    track_norm, master_norm = predict_params(model, tracks, reference(samples=10 * ONE_SECOND), SAMPLE_RATE)
    elapsed_s = time.perf_counter() - started
    assert track_norm.shape == (8, N_TRACK) and master_norm.shape == (N_MASTER,)
    with capsys.disabled():
        parameters = sum(p.numel() for p in model.parameters())
        print(f"\n[controller] default config: {parameters / 1e6:.2f} M parameters, checkpoint {checkpoint_mb:.1f} MB, "
              f"CPU forward 8 tracks x 10 s: {elapsed_s:.2f} s")


def test_a_checkpoint_of_schema_version_1_with_the_same_learnable_names_loads(tmp_path):
    model = build(seed=4)
    path = tmp_path / "controller.pt"
    save_checkpoint(path, model, training_info={"steps": 1})
    payload = torch.load(path, weights_only=True)
    payload["schema_version"] = 1
    torch.save(payload, path)
    loaded = load_checkpoint(path)
    expected = run(model.eval(), [session(2)], [reference()])
    actual = run(loaded, [session(2)], [reference()])
    assert torch.equal(actual[0], expected[0]) and torch.equal(actual[1], expected[1])


@pytest.mark.parametrize("version", [0, 99, "2", None])
def test_a_checkpoint_of_an_unknown_schema_version_is_refused(tmp_path, version):
    path = _edited_checkpoint(tmp_path, lambda p: p.update(schema_version=version))
    with pytest.raises(CheckpointError, match="schema version"):
        load_checkpoint(path)
