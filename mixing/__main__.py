"""Command line: ``python -m mixing COMMAND ...``; ``python -m mixing COMMAND -h`` describes each command.

- ``mix STEMS... --reference REF --out MIX.wav``: mix stems (files, folders or a ZIP) toward a reference;
- ``metrics MIX --reference REF [--json]``: AF features, AF loss and readings of a mix against a reference;
- ``advise STEMS... --params P.json --target T.json``: what to change, track by track, to move the mix of
  ``P.json`` toward that of ``T.json`` (JSON: :meth:`mixing.advice.Advice.to_dict`);
- ``generate OUT ...``: write synthetic multitrack sessions (``python -m mixing.datagen``).

Exit status: 0 on success, 2 on bad input (unreadable or rejected audio, a bad
preset or checkpoint, wrong arguments) with a one-line reason on stderr.
This module only parses arguments and prints; the work is in
:mod:`mixing.session`, :mod:`mixing.pipeline` and :mod:`mixing.analysis`. Commands import the
library when they run, so that ``generate`` and ``--help`` start without torch.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Command:
    """A subcommand: ``main`` takes the arguments after its name and returns the exit status."""

    name: str
    help: str
    main: Callable[[list[str]], int]


class ProgressPrinter:
    """Shows pipeline progress events on a stream: one updating line on a terminal, else a line per stage and 10%."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = self.stream.isatty()
        self.last = ("", -1)
        self.width = 0

    def __call__(self, event: dict) -> None:
        if self.quiet:
            return
        percent = int(event["progress"] * 100)
        text = f"{event['stage']:<10} {percent:3d}%  {event['detail']}"
        if self.live:
            bar = "#" * (percent // 5)
            line = f"[{bar:<20}] {text}"
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        elif event["stage"] != self.last[0] or percent // 10 != self.last[1] // 10:
            self.stream.write(text.rstrip() + "\n")
        self.last = (event["stage"], percent)
        self.stream.flush()

    def close(self) -> None:
        if self.live and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _mix_parser() -> argparse.ArgumentParser:
    from mixing.fit import DEFAULT_TIME_BUDGET_S
    from mixing.pipeline import DEFAULT_CHECKPOINT, METHODS
    from mixing.session import EXPORT_FORMATS

    parser = argparse.ArgumentParser(
        prog=f"{program_name()} mix",
        description="Mix stems toward a reference song and write the mix (and optionally its parameters).",
    )
    parser.add_argument("stems", nargs="+", metavar="STEMS",
                        help="audio files, folders (their audio files, sorted by name) or one .zip")
    parser.add_argument("--reference", metavar="REF", help="the reference song whose mix style to match")
    parser.add_argument("--out", required=True, metavar="MIX", help="where to write the mix")
    parser.add_argument("--params-out", metavar="P.json", help="also write the parameters as a preset")
    parser.add_argument("--params-in", metavar="P.json", help="render these parameters instead of matching")
    parser.add_argument("--method", choices=METHODS, help="how to mix (default auto)")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT),
                        help="controller checkpoint (default: %(default)s)")
    parser.add_argument("--time-budget-s", type=float, default=DEFAULT_TIME_BUDGET_S,
                        help="longest fitting time (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=150, help="most fitting steps (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fitting (default %(default)s)")
    parser.add_argument("--format", choices=EXPORT_FORMATS,
                        help="output format (default: flac for a .flac file, else wav24)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser


def mix_main(argv: list[str]) -> int:
    parser = _mix_parser()
    args = parser.parse_args(argv)
    if args.params_in and args.method:
        parser.error("--params-in renders the given parameters; leave out --method")
    method = args.method or "auto"
    if args.reference is None and not args.params_in and method != "equal-loudness":
        parser.error(f"--method {method} needs --reference; without one use --method equal-loudness or --params-in")
    if args.params_out and method == "equal-loudness":
        parser.error("the equal-loudness mix has no parameters to write; leave out --params-out")
    if args.iterations < 0 or args.time_budget_s <= 0:
        parser.error("--iterations must be >= 0 and --time-budget-s > 0")
    for option, path in (("--out", args.out), ("--params-out", args.params_out)):
        if path and not Path(path).resolve().parent.is_dir():
            parser.error(f"{option}: the folder of {path} does not exist")
    format_name = args.format or ("flac" if Path(args.out).suffix.lower() == ".flac" else "wav24")

    from mixing.pipeline import load_inputs, read_preset, stem_files
    from mixing.session import MixSession

    progress = ProgressPrinter(quiet=args.quiet)
    began = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="mixref-") as scratch:
            paths, notes = stem_files(args.stems, scratch)
            for note in notes:
                print(f"warning: {note}", file=sys.stderr)
            # Given parameters are rendered as they are; the reference would go unused.
            stems, reference = load_inputs(paths, None if args.params_in else args.reference, progress=progress)
        loading_s = time.perf_counter() - began
        params = read_preset(args.params_in, stems.names) if args.params_in else None
        session = MixSession(stems, reference, trim_in_place=True)
        result = session.mix(method=method, params=params, checkpoint=args.checkpoint,
                             time_budget_s=args.time_budget_s, iterations=args.iterations, seed=args.seed,
                             progress=progress)
    finally:
        progress.close()
    writing_began = time.perf_counter()
    session.export([(result.audio, args.out, format_name)])
    writing_s = time.perf_counter() - writing_began
    if args.params_out:
        Path(args.params_out).write_text(json.dumps(result.preset(), indent=2) + "\n", encoding="utf-8")

    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Mixed {len(stems.names)} stems ({result.method}): {result.loudness_lufs:.1f} LUFS, "
          f"true peak {result.true_peak_dbtp:.1f} dBTP, {time.perf_counter() - began:.1f} s in all.")
    if result.fit is not None:
        print(f"AF loss on the excerpts {result.fit.start_loss:.4f} -> {result.fit.loss:.4f} "
              f"in {result.fit.iterations} iterations.")
    if result.match is not None:
        print(f"AF loss on the whole song {result.match.start_loss:.4f} -> {result.match.loss:.4f} "
              f"after master matching.")
    timings_s = {"loading": loading_s, **result.timings_s, "writing": writing_s}
    stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timings_s.items())
    print(f"Stages: {stages}.")
    print(f"Wrote {args.out} ({format_name})" + (f" and {args.params_out}." if args.params_out else "."))
    return 0


def metrics_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{program_name()} metrics",
        description="Compare a mix with a reference: AF features, AF loss per term, loudness, true peak, readings.",
    )
    parser.add_argument("mix", metavar="MIX", help="the mix to measure")
    parser.add_argument("--reference", required=True, metavar="REF", help="the reference song")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    from mixing import SAMPLE_RATE
    from mixing.analysis import analyse
    from mixing.pipeline import load_reference

    report = analyse(load_reference(args.mix), load_reference(args.reference), SAMPLE_RATE)
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(_metrics_table(report, SAMPLE_RATE))
    return 0


def _metrics_table(report: dict, sample_rate: int) -> str:
    from mixing.features import bark_band_centres_hz

    mix, ref = report["features"]["mix"], report["features"]["reference"]

    def row(label: str, mix_value, ref_value, spec: str) -> str:
        cells = ["-" if value is None else format(value, spec) for value in (mix_value, ref_value)]
        return f"  {label:<24}{cells[0]:>12}{cells[1]:>12}"

    lines = [f"  {'':<24}{'mix':>12}{'reference':>12}",
             row("loudness (LUFS)", report["loudness_lufs"]["mix"], report["loudness_lufs"]["reference"], ".2f"),
             row("true peak (dBTP)", report["true_peak_dbtp"]["mix"], report["true_peak_dbtp"]["reference"], ".2f"),
             row("rms", mix["rms"], ref["rms"], ".4f"),
             row("crest factor (dB)", mix["crest_factor_db"], ref["crest_factor_db"], ".2f"),
             row("stereo width", mix["stereo_width"], ref["stereo_width"], ".4f"),
             row("stereo imbalance", mix["stereo_imbalance"], ref["stereo_imbalance"], "+.4f"),
             "  bark spectrum (dB)"]
    for centre_hz, mix_db, ref_db in zip(bark_band_centres_hz(sample_rate), mix["bark_spectrum_db"],
                                         ref["bark_spectrum_db"], strict=True):
        lines.append(row(f"  {centre_hz:7.0f} Hz", mix_db, ref_db, ".1f"))
    lines += ["", "  AF loss against the reference (weighted terms)"]
    lines += [f"  {term:<24}{value:>12.5f}" for term, value in report["af_loss"]["mix"].items() if term != "total"]
    lines += [f"  {'total':<24}{report['af_loss']['mix']['total']:>12.5f}", "", "Readings:"]
    lines += [f"  {reading}" for reading in report["readings"]]
    return "\n".join(lines)


def advise_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{program_name()} advise",
        description="Advice toward a target mix: gain moves, masking cuts and master changes, each with its "
                    "measured effect, as JSON on stdout.",
    )
    parser.add_argument("stems", nargs="+", metavar="STEMS",
                        help="audio files, folders (their audio files, sorted by name) or one .zip")
    parser.add_argument("--params", required=True, metavar="P.json", help="the current mix's preset")
    parser.add_argument("--target", required=True, metavar="T.json",
                        help="the preset to move toward (the automatic mix's, or a preferred version's)")
    args = parser.parse_args(argv)

    from mixing.advice import advise
    from mixing.pipeline import load_inputs, read_preset, stem_files
    from mixing.session import MixSession

    with tempfile.TemporaryDirectory(prefix="mixref-") as scratch:
        paths, notes = stem_files(args.stems, scratch)
        for note in notes:
            print(f"warning: {note}", file=sys.stderr)
        stems, _ = load_inputs(paths)
    current, target = (read_preset(path, stems.names) for path in (args.params, args.target))
    advice = advise(MixSession(stems), current, target)
    print(json.dumps(advice.to_dict(), indent=2, allow_nan=False))
    return 0


def _generate_main(argv: list[str]) -> int:
    from mixing.datagen.__main__ import main

    return main(argv)


def _train_main(argv: list[str]) -> int:
    from mixing.train.__main__ import main

    return main(argv)


def _train_tone_main(argv: list[str]) -> int:
    from mixing.tone.__main__ import main

    return main(argv)


# Subcommands by name. A new one is one more Command here; its main may import lazily.
COMMANDS: dict[str, Command] = {command.name: command for command in (
    Command("mix", "mix stems toward a reference song", mix_main),
    Command("metrics", "compare a mix with a reference", metrics_main),
    Command("advise", "what to change, track by track, to move a mix toward a target", advise_main),
    Command("generate", "write synthetic multitrack sessions (python -m mixing.datagen)", _generate_main),
    Command("train", "train the controller (python -m mixing.train)", _train_main),
    Command("train-tone", "train a family's neural tone model (python -m mixing.tone)", _train_tone_main),
)}


def program_name() -> str:
    """How the user called the command line: the installed ``mixref`` script or ``python -m mixing``."""
    return "mixref" if Path(sys.argv[0]).name == "mixref" else "python -m mixing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description="Mixref's mixing library on the command line.",
        epilog="commands:\n" + "\n".join(f"  {c.name:<10} {c.help}" for c in COMMANDS.values())
        + f"\n\n'{program_name()} COMMAND -h' describes a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the command name is parsed here; everything after it belongs to the command's own parser.
    command = parser.parse_args(argv[:1]).command

    from mixing.errors import MixingError, StemsRejected

    try:
        return COMMANDS[command].main(argv[1:])
    except StemsRejected as error:
        print(f"error: {error}", file=sys.stderr)
        if len(error.errors) > 1:
            for stem_error in error.errors:
                print(f"  {stem_error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MixingError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
