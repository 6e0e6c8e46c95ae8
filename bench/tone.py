"""The neural tone models against the two baselines (issue 23, item 6), on each checkpoint's held-out recordings.

For each checkpoint (default: every ``mixing/tone/checkpoints/*.pt``) the test pairs listed in its metadata are
made again from their raw recordings and strip settings (``mixing.tone.data.console_pair``; the generated
sessions must exist where the checkpoint's command had them), then the test MAE of magnitude frames of

- the DAE (the checkpoint),
- the identity (the raw frames as the output),
- the console's own EQ (gain + 6-band EQ of the schema) fitted to each test pair (``mixing.tone.eq_fit``),

all on the same frames, next to the figures the training recorded. Then the time the model takes to process
one 3-minute stereo stem (``--stem``, looped or cut to 180 s), the median of ``--repeats``. Prints a Markdown
table; asserts nothing.

    .venv/bin/python bench/tone.py
    .venv/bin/python bench/tone.py /tmp/h11/bass-1024.pt --stem "../shared/real/lithium/2.Lithium_Stem_SY BASS.m4a"
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STEM = ROOT.parent / "shared/real/lithium/2.Lithium_Stem_SY BASS.m4a"
STEM_S = 180.0


def test_pairs(metadata: dict) -> tuple[list, list[str]]:
    """The checkpoint's test pairs made again, and the recordings that could not be read."""
    from mixing import SAMPLE_RATE
    from mixing.audio.io import load_audio
    from mixing.tone.data import console_pair

    pairs, missing = [], []
    for entry in metadata["test_pairs"]:
        path = Path(entry["recording"])
        if entry["tone_params"] is None or not path.is_file():
            missing.append(entry["recording"])
            continue
        pair = console_pair(load_audio(path).numpy(), SAMPLE_RATE, entry["tone_params"], entry["source"],
                            entry["recording"])
        if pair is not None:
            pairs.append(pair)
    return pairs, missing


def three_minute_stem(path: Path) -> tuple[torch.Tensor, float]:
    """``path`` looped or cut to STEM_S seconds, (channels, samples), and the linear gain to the model's
    loudness (``CLIP_LUFS``)."""
    from mixing import SAMPLE_RATE
    from mixing.audio.io import load_audio
    from mixing.loudness import normalize_to_lufs
    from mixing.tone.data import CLIP_LUFS

    audio = load_audio(path)
    samples = int(STEM_S * SAMPLE_RATE)
    audio = audio.repeat(1, -(-samples // audio.shape[-1]))[:, :samples].contiguous()
    _, gain_db = normalize_to_lufs(audio.numpy(), SAMPLE_RATE, CLIP_LUFS)
    return audio, float(10 ** (gain_db / 20))


def main() -> int:
    from mixing.tone.model import process_audio
    from mixing.tone.train import held_out_figures, load_tone_checkpoint

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="*", type=Path,
                        default=sorted((ROOT / "mixing/tone/checkpoints").glob("*.pt")))
    parser.add_argument("--stem", type=Path, default=DEFAULT_STEM,
                        help="the stem timed at 3 minutes (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.stem.is_file():
        parser.error(f"--stem {args.stem}: no such file")
    stem, scale = three_minute_stem(args.stem)
    print(f"3-minute stem: {args.stem.name}, {stem.shape[0]} channels, {torch.get_num_threads()} torch threads")
    print("| checkpoint | units | test recordings | test frames | DAE | identity | fitted EQ | DAE / identity | "
          "recorded at training (DAE, identity, EQ) | 3-min stem s | size MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in args.checkpoints:
        model, metadata = load_tone_checkpoint(path)
        pairs, missing = test_pairs(metadata)
        if not pairs:
            print(f"| {path.name} | test recordings not found: {', '.join(missing)} |")
            continue
        figures = held_out_figures(model, pairs)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            process_audio(model, stem, scale)
            times.append(time.perf_counter() - started)
        recorded = ", ".join(f"{metadata[key]:.4f}" for key in ("test_mae", "identity_test_mae", "eq_fit_test_mae"))
        print(f"| {path.name} | {metadata['config']['hidden_units']} | {len(metadata['test_recordings'])} "
              f"({len(missing)} missing) | {figures['test_frames']} | {figures['test_mae']:.4f} | "
              f"{figures['identity_test_mae']:.4f} | {figures['eq_fit_test_mae']:.4f} | "
              f"{figures['test_mae'] / figures['identity_test_mae']:.2f} | {recorded} | "
              f"{statistics.median(times):.2f} | {path.stat().st_size / 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
