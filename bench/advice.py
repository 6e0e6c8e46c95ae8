"""How much of a detuned balance the advice puts back (mixing/advice.py), on generated sessions and a real song.

For each session the balanced parameters are the expert start (:func:`mixing.expert.starting_params`: role
offsets, pans, low cuts and gentle compression on every track, so level != gain). Each detuning moves every
track's fader by a seeded uniform -8..+8 dB; the advice toward the balanced parameters is asked once and its
gain suggestions are applied. Reported, over all tracks of all detunings: the median share of each track's gain
error removed (1 - |error after| / |error before|), the median absolute error before and after, and the most a
track was made worse (|after| - |before|, dB). Targets: median at least 70 % removed, no track worse by more
than 1 dB. With ``--model`` a learnt gain corrector (mixing/train/advice_gains.py) is scored the same way.

The real song: ``--real`` folder of stems (e.g. ../shared/real/lithium, 38 M4A stems), a window of
``--real-window-s`` from ``--real-offset-s``, its ``--real-stems`` loudest stems in that window (stems silent
there left out). It has no
reference and no ground-truth mix, so its target is the expert start too (the automatic mix's first step).

    .venv/bin/python -m mixing.datagen /tmp/advice-bench --count 6 --duration-s 20 --seed 3
    .venv/bin/python bench/advice.py --sessions /tmp/advice-bench --detunings 3 \\
        --real ../shared/real/lithium --real-offset-s 240 --real-window-s 30 --real-stems 16
"""
from __future__ import annotations

import argparse
import copy
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixing.advice import advise, apply
from mixing.audio import Stems, load_stems
from mixing.expert import starting_params
from mixing.loudness import integrated_loudness_lufs
from mixing.session import MixSession

DETUNE_DB = 8.0
AUDIO_SUFFIXES = {".wav", ".flac", ".m4a", ".mp3", ".aiff", ".aif", ".ogg"}


def detuned(params, rng: np.random.Generator):
    moved = copy.deepcopy(params)
    for values in moved.tracks:
        values["gain_db"] += float(rng.uniform(-DETUNE_DB, DETUNE_DB))
    return moved


def errors_db(params, balanced) -> list[float]:
    return [values["gain_db"] - target["gain_db"] for values, target in zip(params.tracks, balanced.tracks,
                                                                            strict=True)]


def analytic(session: MixSession, current, balanced):
    """The current parameters with the advice's gain suggestions applied."""
    advice = advise(session, current, balanced)
    return apply(current, [change for suggestion in advice.suggestions if suggestion.kind == "gain"
                           for change in suggestion.changes])


def learnt(model_path: str):
    from mixing.train.advice_gains import load_model, predict_gains_db

    model = load_model(model_path)

    def corrected(session: MixSession, current, balanced):
        moved = copy.deepcopy(current)
        for values, gain_db in zip(moved.tracks, predict_gains_db(model, session, current, balanced), strict=True):
            values["gain_db"] = gain_db
        return moved

    return corrected


def score(sessions: list[MixSession], methods: dict, detunings: int, seed: int) -> dict[str, dict]:
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    for number, session in enumerate(sessions):
        balanced = starting_params(session.tracks, session.sample_rate, list(session.stems.names))
        rng = np.random.default_rng(seed + number)
        for _ in range(detunings):
            current = detuned(balanced, rng)
            before = errors_db(current, balanced)
            for name, method in methods.items():
                began = time.perf_counter()
                after = errors_db(method(session, current, balanced), balanced)
                seconds[name] += time.perf_counter() - began
                rows[name] += [(abs(b), abs(a)) for b, a in zip(before, after, strict=True)]
    return {name: summary(pairs, seconds[name] / (len(sessions) * detunings)) for name, pairs in rows.items()}


def summary(pairs: list[tuple[float, float]], seconds_per_advice: float) -> dict:
    removed = [1.0 - after / before for before, after in pairs if before > 0]
    return {
        "tracks": len(pairs),
        "median_removed_pct": 100.0 * statistics.median(removed),
        "median_error_before_db": statistics.median(before for before, _ in pairs),
        "median_error_after_db": statistics.median(after for _, after in pairs),
        "worst_made_worse_db": max(after - before for before, after in pairs),
        "seconds_per_advice": seconds_per_advice,
    }


def generated_sessions(folder: Path) -> list[MixSession]:
    return [MixSession(load_stems(sorted(path for path in session.iterdir() if path.suffix == ".wav")), None,
                       device="cpu")
            for session in sorted(folder.iterdir()) if (session / "session.json").is_file()]


def real_session(folder: Path, offset_s: float, window_s: float, stems: int) -> MixSession:
    paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in AUDIO_SUFFIXES)
    loaded = load_stems(paths)
    start = round(offset_s * loaded.sample_rate)
    stop = start + round(window_s * loaded.sample_rate)
    windows = [audio[:, start:stop] for audio in loaded.audio]
    # Stems silent in the window have no level to balance.
    sounding = [i for i, audio in enumerate(windows)
                if math.isfinite(integrated_loudness_lufs(audio, loaded.sample_rate))]
    keep = sorted(sorted(sounding, key=lambda i: -float(windows[i].pow(2).mean()))[:stems])
    return MixSession(Stems([loaded.names[i] for i in keep], [windows[i] for i in keep], loaded.sample_rate, []),
                      None, device="cpu")


def show(title: str, results: dict[str, dict]) -> None:
    print(title)
    for name, row in results.items():
        print(f"  {name:<9} {row['tracks']:4d} tracks  removed (median) {row['median_removed_pct']:6.1f} %  "
              f"error {row['median_error_before_db']:.2f} -> {row['median_error_after_db']:.2f} dB (median)  "
              f"worst made worse {row['worst_made_worse_db']:+.2f} dB  {row['seconds_per_advice']:.1f} s per advice")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=Path, help="generated sessions (python -m mixing.datagen)")
    parser.add_argument("--detunings", type=int, default=3, help="detuned versions per session")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="a learnt gain corrector's checkpoint to compare")
    parser.add_argument("--real", type=Path, help="a folder of a real song's stems")
    parser.add_argument("--real-offset-s", type=float, default=240.0)
    parser.add_argument("--real-window-s", type=float, default=30.0)
    parser.add_argument("--real-stems", type=int, default=16)
    args = parser.parse_args(argv)
    methods = {"analytic": analytic}
    if args.model:
        methods["learnt"] = learnt(args.model)
    print(f"{time.strftime('%Y-%m-%d')} on {platform.node()} ({platform.processor() or platform.machine()})")
    if args.sessions:
        sessions = generated_sessions(args.sessions)
        show(f"Generated: {len(sessions)} sessions x {args.detunings} detunings of -{DETUNE_DB:g}..+{DETUNE_DB:g} dB",
             score(sessions, methods, args.detunings, args.seed))
    if args.real:
        began = time.perf_counter()
        session = real_session(args.real, args.real_offset_s, args.real_window_s, args.real_stems)
        print(f"Real: {args.real.name}, {len(session.stems.names)} stems, {args.real_window_s:g} s from "
              f"{args.real_offset_s:g} s (loaded in {time.perf_counter() - began:.1f} s)")
        show("", score([session], methods, args.detunings, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
