"""What the mix did (:mod:`mixing.explain`) on real multitracks: how long the per-track part takes next to the
render it explains, cold and after one fader move, and how large its JSON is. Every track gets a 3:1 compressor
at -24 dB and +3 dB at 600 Hz, so that every gain reduction runs. Prints the seconds; asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/explain.py var/real/1.Hydrogen
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mixing import explain
from mixing.params import MixParams
from mixing.session import MixSession


def _timed(what: str, call):
    start = time.perf_counter()
    result = call()
    print(f"  {what}: {time.perf_counter() - start:.1f} s")
    return result


def bench_song(song: Path) -> None:
    paths = sorted(path for path in song.iterdir() if "_Stem_" in path.name)
    start = time.perf_counter()
    session = MixSession.from_files(paths)
    print(f"{song.name}: {len(session.tracks)} stems, {session.renderer.samples / session.sample_rate:.0f} s at "
          f"{session.sample_rate} Hz, decoded and trimmed in {time.perf_counter() - start:.1f} s")
    params = MixParams.default(len(paths))
    for values in params.tracks:
        values.update(comp_ratio=3.0, comp_threshold_db=-24.0, eq_band2_gain_db=3.0)
    cache: dict = {}

    def explained() -> list[dict]:
        return explain.track_explanations(session.renderer, params, session.playing(), cache=cache)

    _timed("render", lambda: session.render(params))
    explanation = _timed("explain, cold", explained)
    params.tracks[0]["gain_db"] = -2.0
    _timed("re-render after one fader", lambda: session.render(params))
    _timed("explain after one fader", explained)
    print(f"  JSON of the tracks: {len(json.dumps(explanation)) / 1000:.0f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("songs", nargs="+", type=Path, help="folders of *_Stem_* files")
    for song in parser.parse_args().songs:
        bench_song(song)


if __name__ == "__main__":
    main()
