"""Command line: train one family's tone model.

    mixref train-tone FAMILY --stems DIR [DIR ...] [--draws N] [--pairs DIR] --out PATH [options]

``--stems``: folders searched recursively for raw stems (generated sessions of ``mixing.datagen``, the real
multitracks); a stem whose name says ``FAMILY`` (``mixing.tone.family``) becomes ``--draws`` pairs with random
console settings around the family's tone. ``--pairs``: a user's folder with ``raw/`` and ``processed/`` files
of the same names.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from mixing.errors import MixingError


def _console_pairs(folders: list[str], family: str, draws: int, rng: random.Random, max_stems: int | None):
    from mixing import SAMPLE_RATE
    from mixing.audio.io import load_audio
    from mixing.audio.names import is_audio_filename, track_name_from_filename
    from mixing.tone.data import console_pair, random_tone_params
    from mixing.tone.family import family_from_name

    stems = sorted(path for folder in folders for path in Path(folder).rglob("*")
                   if is_audio_filename(path.name) and family_from_name(track_name_from_filename(path.name)) == family)
    pairs = []
    for path in stems[:max_stems]:
        audio = load_audio(path).numpy()
        for draw in range(draws):
            pair = console_pair(audio, SAMPLE_RATE, random_tone_params(family, rng),
                                f"{path.parent.name}/{path.name} draw {draw}", str(path))
            if pair is not None:
                pairs.append(pair)
    return pairs


def main(argv: list[str] | None = None) -> int:
    from mixing import SAMPLE_RATE
    from mixing.tone.data import pairs_from_folder
    from mixing.tone.family import FAMILIES
    from mixing.tone.train import ToneConfig, save_tone_checkpoint, train_tone

    parser = argparse.ArgumentParser(prog="mixref train-tone", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family", choices=FAMILIES)
    parser.add_argument("--stems", nargs="+", default=[], help="folders of raw stems (searched recursively)")
    parser.add_argument("--draws", type=int, default=3, help="console settings drawn per raw stem (default 3)")
    parser.add_argument("--max-stems", type=int, help="use at most this many raw stems")
    parser.add_argument("--pairs", help="folder with raw/ and processed/ files of the same names")
    parser.add_argument("--out", required=True, help="checkpoint path to write")
    parser.add_argument("--hidden-units", type=int, default=ToneConfig.hidden_units)
    parser.add_argument("--pretrain-epochs", type=int, default=ToneConfig.pretrain_epochs)
    parser.add_argument("--finetune-epochs", type=int, default=ToneConfig.finetune_epochs)
    parser.add_argument("--no-augment", action="store_true", help="skip the pitch-shift augmentation")
    parser.add_argument("--augment-per-clip", type=int,
                        help="pitch shifts drawn per training clip (default: all 16)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    pairs = _console_pairs(args.stems, args.family, args.draws, rng, args.max_stems)
    if args.pairs:
        pairs += pairs_from_folder(Path(args.pairs), SAMPLE_RATE)
    if len({pair.recording for pair in pairs}) < 2:
        raise MixingError(f"{args.family}: found {len(pairs)} clips in {[*args.stems, args.pairs or '']}; "
                          "need clips of at least 2 recordings")
    config = ToneConfig(hidden_units=args.hidden_units, pretrain_epochs=args.pretrain_epochs,
                        finetune_epochs=args.finetune_epochs, seed=args.seed,
                        augment_semitones=[] if args.no_augment else ToneConfig().augment_semitones,
                        augment_per_clip=args.augment_per_clip)
    model, metadata = train_tone(args.family, pairs, config, log=lambda line: print(line, file=sys.stderr))
    metadata["command"] = "mixref train-tone " + " ".join(argv if argv is not None else sys.argv[1:])
    save_tone_checkpoint(Path(args.out), model, metadata)
    print(f"wrote {args.out}: test MAE {metadata['test_mae']:.4f}, identity {metadata['identity_test_mae']:.4f}, "
          f"fitted EQ {metadata['eq_fit_test_mae']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
