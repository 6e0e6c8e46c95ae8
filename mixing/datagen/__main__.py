"""Command line: ``python -m mixing.datagen OUT --count N --duration-s S --seed K [--stems N]``."""
from __future__ import annotations

import argparse
import sys

from mixing.datagen.compose import MAX_STEMS
from mixing.datagen.session import generate_sessions
from mixing.errors import MixingError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixing.datagen", description=__doc__)
    parser.add_argument("out", help="folder that receives one sub-folder per session")
    parser.add_argument("--count", type=int, default=1, help="number of sessions (default 1)")
    parser.add_argument("--duration-s", type=float, required=True, help="length of every session in seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run (default 0)")
    parser.add_argument("--stems", type=int, help=f"stems per session, 1-{MAX_STEMS} (default: 4-8 at random)")
    parser.add_argument("--workers", type=int, help="FluidSynth processes at once (default: CPU cores)")
    args = parser.parse_args(argv)
    stems_range = (args.stems, args.stems) if args.stems else (4, 8)

    def report(event: dict) -> None:
        verb = "kept" if event["skipped"] else f"{event['seconds']:.1f} s"
        print(f"[{event['done']}/{event['total']}] {event['session']} ({verb})", file=sys.stderr, flush=True)

    try:
        generate_sessions(args.out, args.count, seed=args.seed, duration_s=args.duration_s,
                          num_stems_range=stems_range, workers=args.workers, progress=report)
    except (MixingError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
