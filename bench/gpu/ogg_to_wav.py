"""Device side of bench/gpu: decode every .ogg under SRC into float WAV under DST, same relative paths.

    python3 bench/gpu/ogg_to_wav.py SRC DST
"""
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf


def _decode(paths: tuple[Path, Path]) -> None:
    source, target = paths
    target.parent.mkdir(parents=True, exist_ok=True)
    data, rate = sf.read(source, dtype="float32")
    sf.write(target, data, rate, subtype="FLOAT")


def main() -> None:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    pairs = [(path, dst / path.relative_to(src).with_suffix(".wav")) for path in sorted(src.rglob("*.ogg"))]
    with ProcessPoolExecutor() as pool:
        list(pool.map(_decode, pairs))
    print(f"decoded {len(pairs)} files into {dst}")


if __name__ == "__main__":
    main()
