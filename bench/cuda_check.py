"""The CUDA paths against the CPU on one real-length session, and the automatic mix's time per stage on each.

    .venv/bin/python bench/cuda_check.py STEMS_DIR --reference REF [--auto-devices cuda cpu] [--json OUT]

On the stems of ``STEMS_DIR`` (the audio files in it, as ``mixing mix`` reads a
folder) and the reference ``REF``:

- render: the full-length render with the render bench's settings
  (:func:`bench.render.make_params`) on the CPU and on CUDA; the error of the
  CUDA render in dB under the CPU render's energy (:func:`error_db`), and the
  time of each;
- controller: the shipped checkpoint's prediction from one 10 s excerpt on
  both devices (largest difference of a normalized parameter);
- fit: :func:`mixing.fit.fit_params` for ``--fit-iterations`` iterations from
  the expert start on both devices; their losses, and the error between their
  two mixes, both rendered on the CPU;
- auto: :meth:`mixing.session.MixSession.mix` end to end on each of
  ``--auto-devices`` after an untimed warm-up: wall time, time per stage, fit
  iterations, and the AF loss of the mix against the reference (both at
  -16 LUFS, :func:`mixing.losses.feature_metrics`).

``--device`` names the device compared with the CPU (default ``cuda``; it
exits 2 when torch sees no GPU). Prints JSON; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.render import make_params
from mixing.audio import Stems, is_audio_filename
from mixing.controller import load_checkpoint
from mixing.expert import starting_params
from mixing.fit import fit_params
from mixing.losses import feature_metrics
from mixing.loudness import normalize_to_lufs
from mixing.pipeline import DEFAULT_CHECKPOINT, predict_start
from mixing.session import MixSession

COMPARE_LUFS = -16.0


def error_db(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Energy of ``actual - expected`` relative to that of ``expected``, in dB (-inf when they are equal)."""
    actual, expected = actual.detach().cpu().double(), expected.detach().cpu().double()
    error = float((actual - expected).pow(2).sum())
    return 10.0 * math.log10(error / float(expected.pow(2).sum())) if error > 0 else -math.inf


def _timed(where: str, function, /, *args, **kwargs):
    """(function's result, seconds), the work queued on device ``where`` included."""
    began = time.perf_counter()
    result = function(*args, **kwargs)
    if where.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - began


def compare_render(stems: Stems, device: str) -> dict:
    params = make_params(len(stems.audio))
    first_second = _excerpt(stems, 1)
    renders, seconds = {}, {}
    for where in ("cpu", device):
        MixSession(first_second, device=where).render(params)  # warm-up
        renderer = MixSession(stems, device=where).renderer
        renders[where], seconds[where] = _timed(where, renderer.render, params)
    return {"error_db": error_db(renders[device], renders["cpu"]), "cpu_s": seconds["cpu"], "device_s": seconds[device]}


def compare_controller(tracks: list[torch.Tensor], reference: torch.Tensor, sample_rate: int, checkpoint: Path,
                       device: str) -> dict:
    predictions = {}
    for where in ("cpu", device):
        predictions[where] = predict_start(load_checkpoint(checkpoint, map_location=where), tracks, reference,
                                           sample_rate)
    cpu, other = predictions["cpu"], predictions[device]
    differences = [abs(other.tracks[i][name] - value)
                   for i, row in enumerate(cpu.tracks) for name, value in row.items()]
    differences += [abs(other.master[name] - value) for name, value in cpu.master.items()]
    return {"largest_difference_in_units": max(differences)}


def compare_fit(session: MixSession, iterations: int, device: str) -> dict:
    """Fits from the expert start on the CPU and on ``device``; ``session``'s renderer, on the CPU, renders both."""
    tracks, reference, sample_rate = session.tracks, session.reference, session.sample_rate
    start = starting_params(tracks, sample_rate, session.stems.names)
    figures, renders = {}, {}
    for where in ("cpu", device):
        fit, seconds = _timed(where, fit_params, tracks, reference, sample_rate, start=start, iterations=iterations,
                              time_budget_s=None, device=where)
        figures[where] = {"loss": fit.loss, "start_loss": fit.start_loss, "iterations": fit.iterations,
                          "seconds": seconds}
        renders[where] = session.render(fit.params)
    return {**figures, "mix_error_db": error_db(renders[device], renders["cpu"])}


def _excerpt(stems: Stems, seconds: int) -> Stems:
    """The stems' first ``seconds``."""
    samples = seconds * stems.sample_rate
    return Stems(list(stems.names), [audio[:, :samples] for audio in stems.audio], stems.sample_rate, [])


def time_auto(stems: Stems, reference: torch.Tensor, device: str) -> dict:
    MixSession(_excerpt(stems, 2), reference[:, : 2 * stems.sample_rate], device=device).mix(
        iterations=2, time_budget_s=None)
    mixed, wall_s = _timed(device, MixSession(stems, reference, device=device).mix)
    metrics = feature_metrics(*(normalize_to_lufs(audio.float(), stems.sample_rate, COMPARE_LUFS)[0].unsqueeze(0)
                                for audio in (mixed.audio, reference)), stems.sample_rate)
    return {"wall_s": wall_s, "timings_s": mixed.timings_s, "method": mixed.method,
            "fit_iterations": mixed.fit.iterations if mixed.fit else None, "af_loss": metrics["af_loss"],
            "peak_gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stems", type=Path, help="folder of stem audio files")
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU (default cuda)")
    parser.add_argument("--fit-iterations", type=int, default=10)
    parser.add_argument("--auto-devices", nargs="+", help="devices to time the automatic mix on (default: --device)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/cuda_check.py needs a CUDA GPU; torch sees none", file=sys.stderr)
        return 2

    paths = sorted(p for p in args.stems.iterdir() if p.is_file() and is_audio_filename(p.name))
    session = MixSession.from_files(paths, args.reference, device="cpu")
    stems, reference, tracks, sample_rate = session.stems, session.reference, session.tracks, session.sample_rate
    gpu = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else None
    figures = {"device": args.device, "gpu": gpu, "torch": torch.__version__, "tracks": len(tracks),
               "seconds": tracks[0].shape[-1] / sample_rate}

    def log(name: str) -> None:
        print(f"{name}: {json.dumps(figures[name])}", file=sys.stderr, flush=True)

    figures["render"] = compare_render(stems, args.device)
    log("render")
    if args.checkpoint.exists():
        figures["controller"] = compare_controller(tracks, reference, sample_rate, args.checkpoint, args.device)
        log("controller")
    figures["fit"] = compare_fit(session, args.fit_iterations, args.device)
    log("fit")
    for device in args.auto_devices or [args.device]:
        figures[f"auto_{device}"] = time_auto(stems, reference, device)
        log(f"auto_{device}")
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
