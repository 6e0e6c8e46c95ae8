"""Prepare the one GPU run of issue 26 on the CPU: data, wheels and scripts that travel to the device machine.

    .venv/bin/python bench/gpu/prepare.py            # writes .gpu/ and .whl/ (both git-ignored)

The device machine has its own Python 3.12 with torch, numba, numpy and scipy,
reaches no registry, and receives at most 64 MiB with the working tree, so:

- ``.gpu/sessions/``: ``--sessions`` generated FluidSynth sessions (datagen
  seed 100, 30 s rendered, the first ``--session-s`` kept) for training;
- ``.gpu/case/``: case (b) 1 of the quality bench (the 8 stems x 180 s of
  session 0, and as reference the ground-truth mix of session 1, seed 0) for
  ``bench/cuda_check.py``;
- all as Ogg Vorbis at quality 0.5 (about 9 kB/s a channel; the bands up to
  20 kHz keep their level within 0.3 dB), decoded there by
  ``bench/gpu/ogg_to_wav.py``;
- ``.whl/``: wheels of the pure-Python and abi3 packages the image lacks.

Then, on the device, one call: ``bash bench/gpu/run.sh`` with ``.gpu`` and
``.whl`` carried (BENCHMARKS.md, CUDA).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.quality import DEFAULT_CACHE_DIR, ground_truth, load_sessions  # noqa: E402
from mixing.datagen.session import generate_sessions  # noqa: E402

OGG_QUALITY = 0.5
# The packages the device image lacks, at the versions requirements.txt pins.
WHEELS = ("soundfile==0.14.0", "cffi==2.1.1", "pycparser==3.12", "soxr==1.1.0", "dasp-pytorch==0.0.1",
          "auraloss==0.4.0", "mido==1.3.3")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
_BLOCK_FRAMES = 32768


def write_ogg(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write (frames,) or (frames, channels) float audio as Ogg Vorbis at OGG_QUALITY.

    In blocks: libsndfile 1.2.2 crashes on one Vorbis write of a minute or more.
    """
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    with sf.SoundFile(path, "w", sample_rate, audio.shape[1], format="OGG", subtype="VORBIS",
                      compression_level=OGG_QUALITY) as out:
        for start in range(0, len(audio), _BLOCK_FRAMES):
            out.write(audio[start:start + _BLOCK_FRAMES])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=36, help="training sessions (default %(default)s)")
    parser.add_argument("--session-s", type=float, default=20.0, help="seconds kept of each (default %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl")
    args = parser.parse_args(argv)

    rendered = args.out.parent / "var" / "gpu-sessions"
    generate_sessions(rendered, args.sessions, seed=100, duration_s=30.0)
    for folder in sorted(p for p in rendered.iterdir() if p.is_dir())[: args.sessions]:
        target = args.out / "sessions" / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for wav in sorted(folder.glob("*.wav")):
            info = sf.info(wav)
            data, rate = sf.read(wav, dtype="float32", frames=round(args.session_s * info.samplerate))
            write_ogg(target / f"{wav.stem}.ogg", data, rate)

    sessions = load_sessions(DEFAULT_CACHE_DIR, 2, seed=0, duration_s=180.0, num_stems=8)
    stems_dir = args.out / "case" / "stems"
    stems_dir.mkdir(parents=True, exist_ok=True)
    for name, audio in zip(sessions[0].names, sessions[0].audio, strict=True):
        write_ogg(stems_dir / f"{name}.ogg", audio.numpy().T, sessions[0].sample_rate)
    write_ogg(args.out / "case" / "reference.ogg", ground_truth(sessions[1], 1).mix.numpy().T,
              sessions[1].sample_rate)

    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(args.wheels),
                    *WHEELS], check=True)
    files = [path for folder in (args.out, args.wheels) for path in folder.rglob("*") if path.is_file()]
    size_mb = sum(path.stat().st_size for path in files) / 1e6
    print(f"{args.out} and {args.wheels}: {size_mb:.1f} MB; with the working tree they must stay under 64 MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
