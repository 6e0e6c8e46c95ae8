"""Command line for training the controller.

    python -m mixing.train --sessions DIR [--references DIR] --method 1|2 --steps N --out PATH [options]
    python -m mixing.train make-references SESSIONS OUT --seed K
    python -m mixing.train evaluate CHECKPOINT --sessions DIR --references DIR [--fit-iterations N]

``python -m mixing train ...`` calls :func:`main` with the same arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from mixing.errors import MixingError


def _train_parser() -> argparse.ArgumentParser:
    """The train command's flags; each sets the TrainConfig field named by its ``dest``, whose default it takes."""
    from mixing.train.loop import MODEL_CONFIGS, TrainConfig

    parser = argparse.ArgumentParser(prog="python -m mixing.train",
                                     description="Train the controller (Diff-MST methods 1 and 2).")
    parser.add_argument("--sessions", required=True, help="folder of session folders, each holding stem audio files")
    parser.add_argument("--references", help="folder of reference songs (needed by method 2)")
    parser.add_argument("--method", type=int, choices=(1, 2), required=True,
                        help="1: random console settings make the reference from the same stems; "
                             "2: real reference songs")
    parser.add_argument("--steps", type=int, required=True, help="optimizer steps in this run")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", dest="learning_rate", type=float, help="Adam learning rate")
    parser.add_argument("--excerpt-s", type=float, help="seconds of audio the controller sees per example")
    parser.add_argument("--min-tracks", type=int, help="fewest tracks per example")
    parser.add_argument("--max-tracks", type=int, help="most tracks per example")
    parser.add_argument("--config", dest="model_config", choices=sorted(MODEL_CONFIGS), help="model size")
    parser.add_argument("--out", required=True, help="checkpoint path to write")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--time-budget-s", type=float, help="stop after this many seconds of training")
    parser.add_argument("--resume", help="checkpoint to continue from (its config wins over --config)")
    parser.add_argument("--mrstft-weight", type=float, help="method 1 only")
    parser.add_argument("--af-weight", type=float)
    parser.add_argument("--param-loss-weight", type=float,
                        help="method 1 only: MSE on normalized parameters against the drawn ones; 0 switches it off")
    parser.add_argument("--log-every", type=int, help="steps between loss lines on stderr")
    parser.add_argument("--save-every", type=int, help="steps between checkpoint saves")
    parser.add_argument("--device", help="where the controller trains: cpu, cuda, cuda:1 (default: CUDA if present)")
    parser.add_argument("--workers", type=int,
                        help="processes that make the coming steps' examples on the CPU (0: none)")
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)
                if field.default is not dataclasses.MISSING}
    min_tracks, max_tracks = defaults.pop("track_range")
    parser.set_defaults(**defaults, min_tracks=min_tracks, max_tracks=max_tracks)
    return parser


def _train(argv: list[str]) -> int:
    from mixing.train.loop import TrainConfig, train

    args = vars(_train_parser().parse_args(argv))
    track_range = (args.pop("min_tracks"), args.pop("max_tracks"))
    train(TrainConfig(**args, track_range=track_range))
    return 0


def _make_references(argv: list[str]) -> int:
    from mixing.train.references import make_references

    parser = argparse.ArgumentParser(prog="python -m mixing.train make-references",
                                     description="Render each session with random plausible settings "
                                                 "into OUT/<session>.wav.")
    parser.add_argument("sessions", help="folder of session folders")
    parser.add_argument("out", help="folder for the reference songs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_references(args.sessions, args.out, seed=args.seed,
                    progress=lambda line: print(line, file=sys.stderr, flush=True))
    return 0


def _evaluate(argv: list[str]) -> int:
    from mixing.controller.checkpoint import load_checkpoint
    from mixing.train.evaluate import evaluate_against_expert

    parser = argparse.ArgumentParser(prog="python -m mixing.train evaluate",
                                     description="AF loss at matched loudness of the defaults, the expert start "
                                                 "and the controller.")
    parser.add_argument("checkpoint")
    parser.add_argument("--sessions", required=True, help="held-out session folders")
    parser.add_argument("--references", required=True, help="reference songs; session i is paired with reference i + 1")
    parser.add_argument("--excerpt-s", type=float, default=5.0)
    parser.add_argument("--fit-iterations", type=int, default=0,
                        help="also fit from the expert and the controller starts")
    args = parser.parse_args(argv)
    rows = evaluate_against_expert(load_checkpoint(args.checkpoint), args.sessions, args.references,
                                   excerpt_s=args.excerpt_s, fit_iterations=args.fit_iterations)
    print(json.dumps(rows, indent=2))
    return 0


_COMMANDS = {"make-references": _make_references, "evaluate": _evaluate}


def main(argv: list[str] | None = None) -> int:
    """Run a training command; returns the exit status. Errors in the data are reported, not raised."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _COMMANDS.get(argv[0]) if argv else None
    try:
        return command(argv[1:]) if command else _train(argv)
    except (MixingError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
