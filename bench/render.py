"""Full-length render speed and memory: our console against the same chain in Spotify's pedalboard.

Renders ``--tracks`` mono stems of ``--seconds`` at 44.1 kHz through gain ->
6-band EQ -> compressor -> pan -> sum -> master EQ -> compressor -> width ->
loudness -> ceiling, once per engine, each in a fresh subprocess so that its
peak resident memory (``ru_maxrss``) is its own. Also times re-renders after
one track's EQ changed and after a change of the master's later stages (width, match EQ, loudness), with
the incremental renderer, each the median of three edits. Prints figures and ratios; asserts nothing about time.

    .venv/bin/python bench/render.py                 # 16 tracks x 180 s
    .venv/bin/python bench/render.py --seconds 20 --tracks 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAMPLE_RATE = 44100
ENGINES = ("ours-cpu", "ours-cuda", "pedalboard")


def make_tracks(num_tracks: int, seconds: float) -> list[np.ndarray]:
    """Mono stems (1, samples), float32: retriggered decaying tones over noise, a different pitch per track."""
    samples = int(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(0)
    t = np.arange(samples, dtype=np.float32) / SAMPLE_RATE
    tracks = []
    for index in range(num_tracks):
        period_s = 0.25 + 0.05 * index
        envelope = np.exp(-6.0 * np.mod(t, period_s) / period_s, dtype=np.float32)
        tone = np.sin(2 * np.pi * (55.0 * (1 + index % 8)) * t, dtype=np.float32) * envelope
        noise = rng.standard_normal(samples, dtype=np.float32) * 0.2
        tracks.append((0.05 * (tone + noise)).reshape(1, -1))
    return tracks


def make_params(num_tracks: int):
    from mixing.params import MixParams

    params = MixParams.default(num_tracks)
    for index, track in enumerate(params.tracks):
        track.update(
            gain_db=-3.0 + index % 5,
            eq_low_shelf_gain_db=3.0,
            eq_band1_gain_db=-4.0,
            eq_band2_gain_db=2.0,
            eq_band2_q=2.0,
            eq_band3_gain_db=-3.0,
            eq_band4_gain_db=4.0,
            eq_high_shelf_gain_db=-2.0,
            comp_threshold_db=-30.0,
            comp_ratio=4.0,
            comp_attack_ms=5.0,
            comp_release_ms=150.0,
            pan_pct=-80.0 + 160.0 * index / max(1, num_tracks - 1),
        )
    params.master.update(
        master_eq_low_shelf_gain_db=1.5,
        master_eq_band3_gain_db=-1.5,
        master_eq_high_shelf_gain_db=2.0,
        master_comp_threshold_db=-20.0,
        master_comp_ratio=2.0,
        master_width_pct=120.0,
        master_loudness_lufs=-14.0,
        master_ceiling_dbtp=-1.0,
    )
    return params


def run_ours(tracks: list[np.ndarray], device: str) -> dict:
    import torch

    from mixing.dsp.console import IncrementalRenderer

    def synchronize():
        if device == "cuda":
            torch.cuda.synchronize()

    params = make_params(len(tracks))
    # Warm-up on one second loads numba's cached kernels and FFT plans, so the timing is of rendering only.
    IncrementalRenderer([torch.from_numpy(track[:, :SAMPLE_RATE]) for track in tracks], SAMPLE_RATE, device).render(
        params
    )
    synchronize()
    start = time.perf_counter()
    renderer = IncrementalRenderer([torch.from_numpy(track) for track in tracks], SAMPLE_RATE, device)
    renderer.render(params)
    synchronize()
    full_s = time.perf_counter() - start

    def median_edit_s(edits) -> float:
        # One edit's time is easily swamped by a busy machine: the median of three.
        edit_s = []
        for edit in edits:
            edit(params)
            start = time.perf_counter()
            renderer.render(params)
            synchronize()
            edit_s.append(time.perf_counter() - start)
        return sorted(edit_s)[1]

    one_track_s = median_edit_s([lambda p, i=index: p.tracks[i].update(eq_band2_gain_db=-6.0) for index in range(3)])
    # The master's later stages, as matching's rounds and the studio's master sliders move them.
    master_s = median_edit_s([lambda p: p.master.update(master_width_pct=120.0),
                              lambda p: p.master.update(master_match_eq_08_gain_db=2.0),
                              lambda p: p.master.update(master_loudness_lufs=-12.0)])
    mix = renderer.render(params)
    result = {"full_s": full_s, "one_track_rerender_s": one_track_s, "master_only_rerender_s": master_s,
              "finite": bool(torch.isfinite(mix).all())}
    if device == "cuda":
        result["gpu_peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return result


def run_pedalboard(tracks: list[np.ndarray]) -> dict:
    import pedalboard
    import pyloudnorm

    params = make_params(len(tracks))

    def eq_and_compressor(values: dict, prefix: str) -> list:
        def band(key):
            return dict(
                cutoff_frequency_hz=values[f"{prefix}eq_{key}_freq_hz"],
                gain_db=values[f"{prefix}eq_{key}_gain_db"],
                q=values[f"{prefix}eq_{key}_q"],
            )

        return [
            pedalboard.LowShelfFilter(**band("low_shelf")),
            *(pedalboard.PeakFilter(**band(f"band{i}")) for i in range(1, 5)),
            pedalboard.HighShelfFilter(**band("high_shelf")),
            pedalboard.Compressor(
                threshold_db=values[f"{prefix}comp_threshold_db"],
                ratio=values[f"{prefix}comp_ratio"],
                attack_ms=values[f"{prefix}comp_attack_ms"],
                release_ms=values[f"{prefix}comp_release_ms"],
            ),
        ]

    start = time.perf_counter()
    mix = np.zeros((2, tracks[0].shape[-1]), dtype=np.float32)
    for track, values in zip(tracks, params.tracks, strict=True):
        board = pedalboard.Pedalboard([pedalboard.Gain(gain_db=values["gain_db"]), *eq_and_compressor(values, "")])
        processed = board(track, SAMPLE_RATE)[0]
        theta = (values["pan_pct"] + 100.0) * math.pi / 400.0
        mix[0] += math.cos(theta) * processed
        mix[1] += math.sin(theta) * processed
    master = params.master
    mix = pedalboard.Pedalboard(eq_and_compressor(master, "master_"))(mix, SAMPLE_RATE)
    mid, side = 0.5 * (mix[0] + mix[1]), 0.5 * (mix[0] - mix[1]) * (master["master_width_pct"] / 100.0)
    mix = np.stack([mid + side, mid - side])
    loudness_lufs = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(mix.T)
    mix = mix * np.float32(10 ** ((master["master_loudness_lufs"] - loudness_lufs) / 20))
    mix = pedalboard.Limiter(threshold_db=master["master_ceiling_dbtp"], release_ms=100.0)(mix, SAMPLE_RATE)
    return {"full_s": time.perf_counter() - start, "finite": bool(np.isfinite(mix).all())}


def child(engine: str, num_tracks: int, seconds: float) -> None:
    tracks = make_tracks(num_tracks, seconds)
    if engine == "pedalboard":
        result = run_pedalboard(tracks)
    else:
        result = run_ours(tracks, "cuda" if engine == "ours-cuda" else "cpu")
    # ru_maxrss is in KiB on Linux.
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--tracks", type=int, default=16)
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)  # set in the per-engine subprocesses
    args = parser.parse_args()
    if args.engine:
        child(args.engine, args.tracks, args.seconds)
        return

    import torch

    engines = ["ours-cpu", "pedalboard"] + (["ours-cuda"] if torch.cuda.is_available() else [])
    print(
        f"{args.tracks} mono tracks x {args.seconds:g} s at {SAMPLE_RATE} Hz; "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs"
    )
    results = {}
    for engine in engines:
        command = [
            sys.executable,
            __file__,
            "--engine",
            engine,
            "--seconds",
            str(args.seconds),
            "--tracks",
            str(args.tracks),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            print(f"{engine}: failed\n{completed.stderr[-2000:]}")
            continue
        results[engine] = json.loads(completed.stdout.strip().splitlines()[-1])
        figures = ", ".join(
            f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in results[engine].items()
        )
        print(f"{engine}: {figures}")
    if "pedalboard" in results:
        anchor = results["pedalboard"]
        for engine in ("ours-cpu", "ours-cuda"):
            if engine in results:
                print(
                    f"{engine} / pedalboard: time {results[engine]['full_s'] / anchor['full_s']:.2f}x, "
                    f"peak memory {results[engine]['peak_rss_gb'] / anchor['peak_rss_gb']:.2f}x"
                )


if __name__ == "__main__":
    main()
