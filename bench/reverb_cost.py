"""Time and peak memory of the reverb bus's one convolution at Lithium's length (5:27, 48 kHz, stereo send).

Run from the repository root: ``.venv/bin/python bench/reverb_cost.py``.
"""
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mixing.dsp.reverb import reverb_return

SAMPLE_RATE = 48000
SECONDS = 327


def main() -> None:
    send = 0.1 * torch.randn(2, SAMPLE_RATE * SECONDS)
    base_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    for decay_s in (1.8, 8.0):
        start = time.perf_counter()
        reverb_return(send, SAMPLE_RATE, decay_s, 20.0, 6000.0, 0.0)
        print(f"decay {decay_s} s: {time.perf_counter() - start:.2f} s")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"peak RSS {peak_gb:.2f} GB (the send alone {base_gb:.2f} GB)")


if __name__ == "__main__":
    main()
