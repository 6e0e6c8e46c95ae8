"""Fuzzing the two parsers of untrusted uploads, outside CI: the audio loader
(``mixing.audio.decode.decode_file``) and the ZIP reader (``mixing.audio.archive.extract_stems_zip``), under
hypothesis, for ``--seconds`` each.

Inputs: small valid files (1.1 s at 8 kHz: WAV, FLAC, OGG, AIFF written here; a ZIP of them with odd entry
names) with bytes overwritten, inserted or cut, and plain random bytes, each written to a temporary file under
one of the extensions (the supported ones and a few others). The only allowed failure is the library's own error
(``mixing.errors.MixingError``, StemError among them); any other exception is a finding, recorded by type and the
line that raised it, and the run goes on (no shrinking). Figures only. Usage:

    .venv/bin/python bench/fuzz.py --seconds 300 --json var/bench/fuzz.json
    .venv/bin/python bench/fuzz.py --seconds 20 --targets zip
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))

from mixing.audio.archive import extract_stems_zip  # noqa: E402 (after the path)
from mixing.audio.decode import decode_file  # noqa: E402
from mixing.audio.names import AUDIO_EXTENSIONS  # noqa: E402
from mixing.errors import MixingError  # noqa: E402

BATCH = settings(max_examples=100, deadline=None, database=None, derandomize=False,
                 suppress_health_check=list(HealthCheck))
EXTENSIONS = [*sorted(AUDIO_EXTENSIONS), ".txt", "", ".WAV"]


def _seed(fmt: str, subtype: str | None, channels: int) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    soundfile.write(buffer, (0.1 * rng.standard_normal((8800, channels))).astype(np.float32), 8000, format=fmt,
                    subtype=subtype)
    return buffer.getvalue()


SEEDS = {".wav": _seed("WAV", "PCM_16", 2), ".flac": _seed("FLAC", "PCM_16", 1), ".ogg": _seed("OGG", "VORBIS", 2),
         ".aiff": _seed("AIFF", "PCM_24", 1), ".wav32": _seed("WAV", "FLOAT", 1)}


def _zip_seed(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for n, name in enumerate(names):
            archive.writestr(name, list(SEEDS.values())[n % len(SEEDS)])
    return buffer.getvalue()


@st.composite
def mutated(draw, seeds: st.SearchStrategy[bytes]) -> bytes:
    """A seed with a few edits, or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=4096))
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["set", "insert", "cut", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


ENTRY_NAMES = st.lists(st.one_of(
    st.sampled_from(["a.wav", "b.flac", "dir/c.ogg", "../up.wav", "/abs.wav", "__MACOSX/._a.wav", ".hidden.wav",
                     "folder/", "x.txt", "a.wav", "C:\\win.wav", "d.aiff"]),
    # zipfile itself cuts a name at a NUL
    st.text(min_size=1, max_size=20).filter(lambda text: "\x00" not in text).map(lambda text: text + ".wav")),
    min_size=1, max_size=6)


class Target:
    def __init__(self, name: str):
        self.name = name
        self.examples = 0
        self.allowed = Counter()
        self.findings: dict[str, dict] = {}

    def record(self, error: BaseException, detail: str) -> None:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        key = f"{type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}"
        entry = self.findings.setdefault(key, {"count": 0, "message": str(error)[:200], "example": detail})
        entry["count"] += 1

    def run(self, body) -> None:
        self.examples += 1
        try:
            body()
        except MixingError as error:
            self.allowed[type(error).__name__] += 1
        except Exception as error:  # every other exception is what we look for
            self.record(error, traceback.format_exc(limit=3)[-600:])


def decoder_batch(target: Target, folder: Path):
    @BATCH
    @given(data=mutated(st.sampled_from(list(SEEDS.values()))), extension=st.sampled_from(EXTENSIONS))
    def one(data: bytes, extension: str) -> None:
        path = folder / f"upload{extension}"
        path.write_bytes(data)
        target.run(lambda: decode_file(path, max_duration_s=60.0))
    return one


def zip_batch(target: Target, folder: Path):
    @BATCH
    @given(data=mutated(ENTRY_NAMES.map(_zip_seed)), max_files=st.sampled_from([None, 1, 3]))
    def one(data: bytes, max_files: int | None) -> None:
        path = folder / "stems.zip"
        path.write_bytes(data)
        with tempfile.TemporaryDirectory(dir=folder) as dest:
            target.run(lambda: extract_stems_zip(path, dest, max_files=max_files, max_total_bytes=50_000_000))
    return one


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="per target")
    parser.add_argument("--targets", nargs="+", choices=["decode", "zip"], default=["decode", "zip"])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # zipfile's duplicate names, made on purpose
    results = []
    for name in args.targets:
        target = Target(name)
        started_s = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"mixref-fuzz-{name}-") as folder:
            batch = (decoder_batch if name == "decode" else zip_batch)(target, Path(folder))
            while time.monotonic() - started_s < args.seconds:
                batch()
        result = {"target": name, "seconds": round(time.monotonic() - started_s), "examples": target.examples,
                  "allowed_errors": dict(target.allowed), "findings": target.findings}
        results.append(result)
        print(json.dumps(result, indent=2), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="minutes"),
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
