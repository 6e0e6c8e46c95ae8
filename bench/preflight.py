"""Stem preflight on real multitracks: what :mod:`mixing.preflight` says about each song, and how long it takes.

Songs are folders of ``*_Stem_*`` files (as in bench/real.py). Stems are decoded in child processes four at a
time and scanned one by one, as the studio's ``GET .../preflight/`` does. ``--with-master`` adds the folder's
``*_Master*`` file to the stems (the preflight should call it the full mix); ``--master-as-reference`` passes
it as the reference instead. Prints each finding and the seconds spent; asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/preflight.py ../shared/real/lithium var/real/*
    PYTHONPATH=. .venv/bin/python bench/preflight.py var/real/6.Caesium --with-master
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from mixing import SAMPLE_RATE
from mixing.audio.decode import decode_isolated
from mixing.preflight import findings_from_scans, scan_stem

DECODE_WORKERS = 4


def scan_file(path: Path):
    """The file's scan and its own sample rate in Hz."""
    decoded = decode_isolated(path)
    return scan_stem(torch.from_numpy(decoded.audio), SAMPLE_RATE), decoded.info.source_sample_rate_hz


def preflight_song(folder: Path, *, with_master: bool, master_as_reference: bool) -> dict:
    stems = sorted(p for p in folder.iterdir() if "_Stem_" in p.name)
    masters = sorted(p for p in folder.iterdir() if "_Master" in p.name)
    if with_master and masters:
        stems.append(masters[0])
    reference = masters[0] if master_as_reference and masters else None
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=DECODE_WORKERS) as pool:
        scans, rates = zip(*pool.map(scan_file, stems + ([reference] if reference else [])), strict=True)
    scanned_s = time.monotonic() - started
    findings = findings_from_scans(scans[:len(stems)], names=[p.name for p in stems], sample_rate=SAMPLE_RATE,
                                   source_sample_rates_hz=rates[:len(stems)],
                                   reference=scans[-1] if reference else None)
    return {"song": folder.name, "stems": len(stems), "duration_s": max(s.duration_s for s in scans),
            "scan_s": scanned_s, "findings_s": time.monotonic() - started - scanned_s, "findings": findings}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("songs", nargs="+", type=Path)
    parser.add_argument("--with-master", action="store_true")
    parser.add_argument("--master-as-reference", action="store_true")
    args = parser.parse_args(argv)
    for folder in args.songs:
        result = preflight_song(folder, with_master=args.with_master, master_as_reference=args.master_as_reference)
        print(f"{result['song']}: {result['stems']} stems, {result['duration_s']:.0f} s; decode and scan "
              f"{result['scan_s']:.1f} s, findings {result['findings_s']:.2f} s")
        for finding in result["findings"]:
            print(f"  [{finding.severity}] {finding.check}: {finding.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
