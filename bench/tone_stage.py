"""The neural tone stage in the studio's renderer: what turning it on for one track costs, and a re-blend.

A session of ``--tracks`` stems of ``--seconds`` at 44.1 kHz, the first a stereo bass (a decaying sawtooth
over noise), the others mono tones; one strip setting for all. Times, in one process, each once:

1. the model's load (the shipped ``mixing/tone/checkpoints/bass.pt``, once per worker process);
2. the first render (every strip, the tone off);
3. the first render with the bass's tone at 100 %: the model's output for the whole stem (its part of the time
   printed apart), the bass's strip again, the sum and the master bus;
4. a re-blend: the amount moved to 50 %, the kept output mixed with the dry track and the bass's strip again.

Prints JSON; asserts nothing about time.

    .venv/bin/python bench/tone_stage.py                 # 4 tracks x 180 s
    .venv/bin/python bench/tone_stage.py --seconds 20 --tracks 2
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixing import SAMPLE_RATE
from mixing.dsp.console import IncrementalRenderer
from mixing.params import MixParams
from mixing.tone import stage


def make_tracks(num_tracks: int, seconds: float) -> list[torch.Tensor]:
    """A stereo bass (2, samples) and mono tones (1, samples), float32, about -20 dBFS RMS."""
    samples = int(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(0)
    t = np.arange(samples, dtype=np.float32) / SAMPLE_RATE
    envelope = np.exp(-4.0 * np.mod(t, 0.5), dtype=np.float32)
    saw = (2.0 * np.mod(55.0 * t, 1.0) - 1.0) * envelope
    bass = np.stack([saw, saw]) * 0.1 + rng.standard_normal((2, samples), dtype=np.float32) * 0.005
    tracks = [torch.from_numpy(bass.astype(np.float32))]
    for index in range(1, num_tracks):
        tone = np.sin(2 * np.pi * 220.0 * index * t, dtype=np.float32) * envelope
        tracks.append(torch.from_numpy((0.1 * tone).reshape(1, -1)))
    return tracks


def timed(action) -> tuple[object, float]:
    began = time.perf_counter()
    result = action()
    return result, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--tracks", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    tracks = make_tracks(args.tracks, args.seconds)
    params = MixParams.default(args.tracks)
    for track in params.tracks:
        track.update(eq_band2_gain_db=3.0, comp_threshold_db=-24.0, comp_ratio=3.0)

    _, load_s = timed(lambda: stage.tone_model("bass"))
    wet_s = []
    original_wet = stage.tone_wet

    def counted_wet(*wet_args):
        result, seconds = timed(lambda: original_wet(*wet_args))
        wet_s.append(seconds)
        return result

    stage.tone_wet = counted_wet
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE, device="cpu",
                                   tone=stage.ToneStage(["bass"] + [None] * (args.tracks - 1)))
    _, first_s = timed(lambda: renderer.render(params))
    params.tracks[0]["tone_amount_pct"] = 100.0
    strips_before = renderer.processed_tracks
    _, tone_on_s = timed(lambda: renderer.render(params))
    params.tracks[0]["tone_amount_pct"] = 50.0
    _, reblend_s = timed(lambda: renderer.render(params))
    print(json.dumps({
        "tracks": args.tracks, "seconds": args.seconds, "bass_channels": 2,
        "model_load_s": round(load_s, 2),
        "first_render_tone_off_s": round(first_s, 2),
        "first_render_tone_on_s": round(tone_on_s, 2),
        "of_which_model_s": round(wet_s[0], 2),
        "reblend_s": round(reblend_s, 2),
        "model_runs": len(wet_s),
        "strips_run_after_the_first_render": renderer.processed_tracks - strips_before,
    }, indent=2))


if __name__ == "__main__":
    main()
