"""The CUDA paths against the CPU on the same inputs: console, controller, fit, the whole mix, a training step.

Skipped where torch sees no GPU. A render counts as the same when the error's
energy is at least 40 dB under the signal's (:func:`error_db`): the CPU renderer
runs the EQ as exact IIR sections and CUDA as a frequency response on the
whole song, so the two are close, not equal. ``bench/cuda_check.py`` measures the
same on a real-length session.
"""
import math

import pytest
import torch

from bench.cuda_check import error_db
from mixing import SAMPLE_RATE
from mixing.audio import Stems
from mixing.controller import Controller, collate_sessions, pack_session, tiny_config
from mixing.controller.checkpoint import load_checkpoint
from mixing.dsp.console import DifferentiableConsole, IncrementalRenderer
from mixing.expert import starting_params
from mixing.fit import fit_params
from mixing.loudness import trim_tracks_to_input_level
from mixing.params import LEARNABLE_MASTER_PARAMS, LEARNABLE_TRACK_PARAMS, MixParams
from mixing.session import mix_session
from mixing.train import TrainConfig, train
from tests.signals import noise, sine, write_audio

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

SECONDS = 4.0
SAME_DB = -40.0


def tracks(seconds: float = SECONDS) -> list[torch.Tensor]:
    """Four stems, mono and stereo, with the dynamics a compressor acts on: retriggered tones over noise."""
    samples = round(seconds * SAMPLE_RATE)
    envelope = torch.exp(-8.0 * torch.remainder(torch.arange(samples) / SAMPLE_RATE, 0.3))
    return [
        sine(55.0, seconds, amplitude=0.4) * envelope + noise(seconds, rms=0.01, seed=1),
        sine(220.0, seconds, amplitude=0.2, channels=2) + noise(seconds, rms=0.02, channels=2, seed=2),
        noise(seconds, rms=0.05, seed=3) * envelope,
        sine(1760.0, seconds, amplitude=0.1) + noise(seconds, rms=0.03, seed=4),
    ]


def reference(seconds: float = SECONDS) -> torch.Tensor:
    return noise(seconds, rms=0.1, channels=2, seed=9) * torch.tensor([[1.0], [0.8]]) + sine(110.0, seconds, channels=2)


def edited_params(count: int) -> MixParams:
    params = MixParams.default(count)
    for index, track in enumerate(params.tracks):
        track.update(gain_db=-2.0 * index, eq_band2_gain_db=4.0, eq_high_shelf_gain_db=-3.0, comp_threshold_db=-30.0,
                     comp_ratio=4.0, pan_pct=-60.0 + 40.0 * index)
    params.master.update(master_eq_band3_gain_db=2.0, master_comp_threshold_db=-18.0, master_comp_ratio=2.0,
                         master_width_pct=130.0, master_loudness_lufs=-14.0)
    return params


def test_full_length_render_on_cuda_matches_cpu():
    trimmed, _ = trim_tracks_to_input_level(tracks(), SAMPLE_RATE)
    params = edited_params(len(trimmed))
    on_cpu = IncrementalRenderer(trimmed, SAMPLE_RATE, "cpu").render(params)
    renderer = IncrementalRenderer(trimmed, SAMPLE_RATE, "cuda")
    on_cuda = renderer.render(params)
    assert on_cuda.is_cuda
    assert error_db(on_cuda, on_cpu) < SAME_DB
    params.tracks[1]["eq_band2_gain_db"] = -6.0  # an incremental re-render too
    assert error_db(renderer.render(params), IncrementalRenderer(trimmed, SAMPLE_RATE, "cpu").render(params)) < SAME_DB


def test_differentiable_console_on_cuda_matches_cpu_with_its_gradients():
    trimmed, _ = trim_tracks_to_input_level(tracks(2.0), SAMPLE_RATE)
    generator = torch.Generator().manual_seed(0)
    track_norm = torch.rand(len(trimmed), len(LEARNABLE_TRACK_PARAMS), generator=generator)
    master_norm = torch.rand(len(LEARNABLE_MASTER_PARAMS), generator=generator)
    results = {}
    for device in ("cpu", "cuda"):
        track_leaf = track_norm.clone().to(device).requires_grad_()
        master_leaf = master_norm.clone().to(device).requires_grad_()
        console = DifferentiableConsole([track.to(device) for track in trimmed], SAMPLE_RATE)
        mix = console(track_leaf, master_leaf, -16.0)
        mix.pow(2).mean().backward()
        results[device] = (mix, track_leaf.grad, master_leaf.grad)
    (mix_cpu, track_grad_cpu, master_grad_cpu), (mix_cuda, track_grad_cuda, master_grad_cuda) = results.values()
    assert error_db(mix_cuda, mix_cpu) < SAME_DB
    assert error_db(track_grad_cuda, track_grad_cpu) < -30.0
    assert error_db(master_grad_cuda, master_grad_cpu) < -30.0


def test_controller_on_cuda_predicts_what_it_predicts_on_cpu():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Controller(**tiny_config()).eval()
    audio, track_mask, stereo = collate_sessions([pack_session(tracks(2.0))])
    ref = reference(2.0).unsqueeze(0)
    with torch.no_grad():
        on_cpu = model(audio, track_mask, stereo, ref)
        model.cuda()
        on_cuda = model(audio.cuda(), track_mask.cuda(), stereo.cuda(), ref.cuda())
    for cpu_values, cuda_values in zip(on_cpu, on_cuda, strict=True):
        torch.testing.assert_close(cuda_values.cpu(), cpu_values, atol=1e-4, rtol=1e-4)


def test_fit_on_cuda_reaches_the_loss_and_mix_of_the_fit_on_cpu():
    trimmed, _ = trim_tracks_to_input_level(tracks(), SAMPLE_RATE)
    start = starting_params(trimmed, SAMPLE_RATE, [f"Track {i}" for i in range(len(trimmed))])
    fits = {device: fit_params(trimmed, reference(), SAMPLE_RATE, start=start, iterations=5, time_budget_s=None,
                               excerpt_s=2.0, device=device) for device in ("cpu", "cuda")}
    assert fits["cuda"].loss == pytest.approx(fits["cpu"].loss, rel=0.02)
    renders = {device: IncrementalRenderer(trimmed, SAMPLE_RATE, "cpu").render(fit.params)
               for device, fit in fits.items()}
    assert error_db(renders["cuda"], renders["cpu"]) < SAME_DB


def test_automatic_mix_on_cuda_matches_the_one_on_cpu():
    stems = Stems([f"Track {i}" for i in range(4)], tracks(), SAMPLE_RATE, [])
    mixes = {device: mix_session(stems, reference(), iterations=3, time_budget_s=None, checkpoint=None,
                                 device=device) for device in ("cpu", "cuda")}
    assert mixes["cuda"].method == mixes["cpu"].method == "expert+balance+fit+match"
    assert error_db(mixes["cuda"].audio, mixes["cpu"].audio) < SAME_DB


def test_a_training_step_on_cuda_saves_a_checkpoint_that_loads_on_cpu(tmp_path):
    session = tmp_path / "sessions" / "session_0"
    session.mkdir(parents=True)
    for index, track in enumerate(tracks(2.0)):
        write_audio(session / f"{index:02d}_Track.wav", track, subtype="FLOAT")
    config = TrainConfig(sessions=str(tmp_path / "sessions"), method=1, steps=2, out=str(tmp_path / "c.pt"),
                         batch_size=2, excerpt_s=0.5, track_range=(2, 4), model_config="tiny", device="cuda",
                         workers=1, log_every=1)
    model = train(config, log=lambda line: None)
    assert next(model.parameters()).is_cuda
    assert all(math.isfinite(value) for value in model.training_info["final_losses"].values())
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert "cuda" in loaded.training_info["stages"][0]["device"]
    assert next(loaded.parameters()).device.type == "cpu"
