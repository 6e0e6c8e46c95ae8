"""A real 38-stem session through the CLI: wall time per stage and resident memory.

Runs ``python -m mixing mix`` on ``../shared/real/lithium`` (38 stereo M4A stems at 48 kHz, 5:27, CC0) in a child
process, reads its progress lines (stderr: a line per stage) and its closing summary (stdout: ``Stages: ...``,
the fit's iterations), and samples the child's resident set size (``/proc/PID/status``, VmRSS) every
``--sample-s``, so that each stage gets the peak RSS seen while it ran. The whole run's peak is the kernel's
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the largest child, which is the CLI; its decode workers are
far smaller). Stages: loading (decoding), analysing (input trims), predicting (expert start and reference
balance), fitting (with its iteration count), matching (master matching, which renders the whole song),
measuring (loudness and true peak), writing (the output file).

The reference is another song of the same album: the plain sum of ``var/real/1.Hydrogen``'s stems (5:08), written
once to ``var/bench/lithium-reference.wav`` (``--reference`` names another file). A watchdog kills the child when
the machine's available memory falls under ``--min-available-gb`` (the machine is shared) and says so.

    .venv/bin/python bench/lithium.py [--json var/bench/lithium.json]

Another song: ``--stems`` names its folder and ``--stems-glob`` picks the stems in it; ``--reference`` its reference,
or ``--own-sum`` makes the reference the plain sum of those stems (written to ``--own-sum``'s path once), which is
time-aligned with them, so the balance is read off it over time (``mixing.aligned``: ``pin_levels``' passes).
``--profile`` runs the CLI under cProfile and writes its statistics there. Caesium (16 stems, 3:48), toward its
own master and toward its own sum:

    S=var/real/6.Caesium; .venv/bin/python bench/lithium.py --stems $S --stems-glob '*_Stem_*' \
        --reference $S/6.Caesium_Master_mobile.m4a
    .venv/bin/python bench/lithium.py --stems $S --stems-glob '*_Stem_*' --own-sum var/bench/caesium-sum.wav

Targets (issue 19, item 5): under 90 s and under 6 GB peak RSS on two CPU cores, at least 30 fitting iterations.
Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STEMS = ROOT.parent / "shared" / "real" / "lithium"
DEFAULT_REFERENCE_SONG = ROOT / "var" / "real" / "1.Hydrogen"
DEFAULT_REFERENCE = ROOT / "var" / "bench" / "lithium-reference.wav"
GIB = 1024**3


def make_reference(song: Path, path: Path, pattern: str = "*") -> None:
    """Writes the plain sum of ``song``'s stems (its audio files matching ``pattern``), brought to -14 LUFS, to
    ``path`` (24-bit WAV at the stems' rate)."""
    sys.path.insert(0, str(ROOT))
    import torch

    from mixing.audio import is_audio_filename, load_stems, save_audio
    from mixing.loudness import normalize_to_lufs
    from mixing.pipeline import as_stereo

    stems = load_stems(sorted(p for p in song.glob(pattern) if is_audio_filename(p.name)))
    total = torch.zeros(2, stems.audio[0].shape[-1])
    for audio in stems.audio:
        total += as_stereo(audio, "stem")
    total, _ = normalize_to_lufs(total, stems.sample_rate, -14.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_audio(path, total.clamp(-1.0, 1.0), stems.sample_rate)


def _rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run(command: list[str], *, sample_s: float, min_available_bytes: int) -> dict:
    """Runs ``command``, returning its output, the peak RSS per stage and overall, and whether the watchdog fired."""
    began = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stage = ["starting"]
    stage_peak: dict[str, int] = {}
    stage_began: dict[str, float] = {}
    samples: list[tuple[float, str, int]] = []
    killed = [False]
    stderr_lines: list[str] = []

    def read_stderr() -> None:
        for line in child.stderr:
            stderr_lines.append(line)
            word = line.split(maxsplit=1)[0] if line.strip() else ""
            if word == "measuring" and "LUFS" in line:
                word = "writing"  # measuring's last line: only the export follows
            if re.fullmatch(r"[a-z]+", word) and word != stage[0] and word not in ("warning", "error"):
                stage[0] = word
                stage_began.setdefault(word, time.perf_counter() - began)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    stdout_parts: list[str] = []
    stdout_reader = threading.Thread(target=lambda: stdout_parts.append(child.stdout.read()), daemon=True)
    stdout_reader.start()
    while child.poll() is None:
        rss = _rss_bytes(child.pid)
        if rss is not None:
            current = stage[0]
            stage_peak[current] = max(stage_peak.get(current, 0), rss)
            samples.append((round(time.perf_counter() - began, 2), current, rss))
        if _available_bytes() < min_available_bytes:
            child.kill()
            killed[0] = True
        time.sleep(sample_s)
    reader.join()
    stdout_reader.join()
    wall_s = time.perf_counter() - began
    return {"returncode": child.returncode, "wall_s": wall_s, "stdout": "".join(stdout_parts),
            "stderr": "".join(stderr_lines), "stage_peak_rss_bytes": stage_peak, "killed_for_memory": killed[0],
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "samples": samples}


def parse_summary(stdout: str) -> dict:
    """The stage times (s) and fit iterations from the CLI's closing lines."""
    stages = {}
    match = re.search(r"^Stages: (.*)\.$", stdout, re.MULTILINE)
    if match:
        for part in match.group(1).split(", "):
            name, seconds, _ = part.rsplit(" ", 2)
            stages[name] = float(seconds)
    iterations = re.search(r"in (\d+) iterations", stdout)
    return {"stages_s": stages, "fit_iterations": int(iterations.group(1)) if iterations else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stems", type=Path, default=DEFAULT_STEMS, help="folder of stems (default %(default)s)")
    parser.add_argument("--stems-glob", default="*", help="the stems: its audio files matching this (default all)")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                        help="reference file; the default is made from var/real/1.Hydrogen when missing")
    parser.add_argument("--own-sum", type=Path, help="instead, the plain sum of the stems, written here if missing")
    parser.add_argument("--profile", type=Path, help="run the CLI under cProfile, its statistics written here")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "lithium-mix.wav")
    parser.add_argument("--sample-s", type=float, default=0.25, help="RSS sampling period (default %(default)s)")
    parser.add_argument("--min-available-gb", type=float, default=1.5,
                        help="kill the run when the machine's available memory falls below this")
    parser.add_argument("--json", type=Path, help="also write the figures (with the RSS samples) here")
    parser.add_argument("mix_args", nargs="*", help="more arguments for 'mix' (after --)")
    args = parser.parse_args(argv)

    if args.own_sum is not None:
        if not args.own_sum.exists():
            print(f"making the reference {args.own_sum} from {args.stems}", file=sys.stderr)
            make_reference(args.stems, args.own_sum, args.stems_glob)
        args.reference = args.own_sum
    if not args.reference.exists():
        if args.reference != DEFAULT_REFERENCE:
            parser.error(f"--reference: {args.reference} does not exist")
        print(f"making the reference {args.reference} from {DEFAULT_REFERENCE_SONG}", file=sys.stderr)
        make_reference(DEFAULT_REFERENCE_SONG, args.reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from mixing.audio.names import is_audio_filename  # names only: this process stays free of torch

    stems = sorted(str(p) for p in args.stems.glob(args.stems_glob) if is_audio_filename(p.name))
    profiler = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
    command = [sys.executable, *profiler, "-m", "mixing", "mix", *stems, "--reference", str(args.reference),
               "--out", str(args.out), *args.mix_args]
    result = run(command, sample_s=args.sample_s, min_available_bytes=int(args.min_available_gb * GIB))
    if result["killed_for_memory"]:
        print(f"killed: the machine's available memory fell below {args.min_available_gb} GB", file=sys.stderr)
    if result["returncode"] != 0:
        print(result["stderr"][-3000:], file=sys.stderr)
    summary = parse_summary(result["stdout"])
    cpus = len(os.sched_getaffinity(0))
    print(f"{len(stems)} stems, {cpus} CPUs, load average {os.getloadavg()[0]:.1f}: "
          f"{result['wall_s']:.1f} s wall, peak RSS {result['peak_rss_bytes'] / GIB:.2f} GiB, "
          f"{summary['fit_iterations']} fitting iterations, exit {result['returncode']}")
    print(f"{'stage':<12}{'seconds':>9}{'peak RSS GiB':>14}")
    for stage in dict.fromkeys([*summary["stages_s"], *result["stage_peak_rss_bytes"]]):
        seconds = summary["stages_s"].get(stage)
        peak = result["stage_peak_rss_bytes"].get(stage)
        print(f"{stage:<12}{'-' if seconds is None else f'{seconds:.1f}':>9}"
              f"{'-' if peak is None else f'{peak / GIB:.2f}':>14}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**summary, **{k: v for k, v in result.items() if k not in ("stdout",)},
                                         "stems": len(stems), "cpus": cpus}, indent=1))
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
