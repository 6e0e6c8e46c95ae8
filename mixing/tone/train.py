"""Training a tone model: greedy layer-wise pretraining of the hidden layers, then fine-tuning raw -> processed
with Adam on the mean absolute error of magnitude frames. The test clips (the clips of 10 % of the raw
recordings, held out whole and never augmented) give the test MAE of the model, of the identity baseline (raw
magnitude as the output) and of the console's own EQ fitted to each test pair (``mixing.tone.eq_fit``)."""
from __future__ import annotations

import pickle
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from mixing.errors import MixingError
from mixing.tone.data import AUGMENT_SEMITONES, Pair, pitch_shifted
from mixing.tone.eq_fit import fit_eq
from mixing.tone.model import HIDDEN_LAYERS, HIDDEN_UNITS, ToneDAE, magnitude_frames

TEST_FRACTION = 0.1
# 2: the log-gain mask model (input standardisation buffers, zero-initialised output).
CHECKPOINT_VERSION = 2


@dataclass
class ToneConfig:
    hidden_units: int = HIDDEN_UNITS
    hidden_layers: int = HIDDEN_LAYERS
    pretrain_epochs: int = 3
    finetune_epochs: int = 20
    batch_frames: int = 256
    learning_rate: float = 1e-3
    augment_semitones: Sequence[float] = field(default_factory=lambda: list(AUGMENT_SEMITONES))
    # Pitch shifts drawn per training clip from ``augment_semitones`` (None: all of them, 16 per clip).
    augment_per_clip: int | None = None
    seed: int = 0


def split_pairs(pairs: Sequence[Pair], rng: random.Random) -> tuple[list[Pair], list[Pair]]:
    """(train, test) by recording: ``TEST_FRACTION`` of the raw recordings (at least one when there are two or
    more) held out with every clip cut from them, so no other draw of a test recording is in training. Pairs
    keep their order within each side."""
    recordings = sorted({pair.recording for pair in pairs})
    rng.shuffle(recordings)
    test_count = max(1, round(TEST_FRACTION * len(recordings))) if len(recordings) >= 2 else 0
    held_out = set(recordings[:test_count])
    return ([pair for pair in pairs if pair.recording not in held_out],
            [pair for pair in pairs if pair.recording in held_out])


def augment(pairs: Sequence[Pair], config: ToneConfig, rng: random.Random) -> list[Pair]:
    """Pitch-shifted copies of ``pairs``: every shift of ``config.augment_semitones``, or
    ``config.augment_per_clip`` of them drawn per pair."""
    shifts = list(config.augment_semitones)
    count = len(shifts) if config.augment_per_clip is None else min(config.augment_per_clip, len(shifts))
    return [pitch_shifted(pair, semitones) for pair in pairs for semitones in rng.sample(shifts, count)]


def pair_frames(pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnitude frames of all pairs: (raw (frames, N_BINS), processed (frames, N_BINS))."""
    raw = [magnitude_frames(torch.from_numpy(pair.raw)) for pair in pairs]
    processed = [magnitude_frames(torch.from_numpy(pair.processed)) for pair in pairs]
    return torch.cat(raw), torch.cat(processed)


def _epochs(inputs: torch.Tensor, targets: torch.Tensor, parameters, forward: Callable, epochs: int,
            config: ToneConfig, generator: torch.Generator) -> float:
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        for batch in torch.randperm(inputs.shape[0], generator=generator).split(config.batch_frames):
            loss = (forward(inputs[batch]) - targets[batch]).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return float(loss.detach())


def pretrain_layerwise(model: ToneDAE, raw: torch.Tensor, config: ToneConfig, generator: torch.Generator) -> None:
    """Greedy layer-wise: each hidden layer is the encoder of a one-layer autoencoder (with a throw-away linear
    decoder) reconstructing the frozen code below it, starting from the raw frames' features (frames, N_BINS)."""
    model.train()
    features = model.features(raw)
    for depth, encoder in enumerate(model.encoders):
        with torch.no_grad():
            below = model.hidden(features, layers=depth)
        decoder = nn.Linear(encoder.out_features, encoder.in_features)

        def reconstruct(x, encoder=encoder, decoder=decoder):
            return decoder(model.dropout(torch.relu(encoder(x))))

        _epochs(below, below, [*encoder.parameters(), *decoder.parameters()], reconstruct, config.pretrain_epochs,
                config, generator)


@torch.no_grad()
def mae(model: ToneDAE | None, raw: torch.Tensor, processed: torch.Tensor) -> float:
    """Mean absolute error over frames and bins of ``model(raw)`` (or of ``raw`` itself, the identity, when
    ``model`` is None) against ``processed``."""
    if model is None:
        return float((raw - processed).abs().mean())
    model.eval()
    return float((model(raw) - processed).abs().mean())


def held_out_figures(model: ToneDAE, test_pairs: Sequence[Pair]) -> dict[str, float]:
    """The frame count of ``test_pairs`` and the MAE over all their frames of ``model``, of the identity and of
    the console's EQ fitted to each pair (each pair weighted by its frames, as in the other two)."""
    raw, processed = pair_frames(test_pairs)
    frames = [pair_frames([pair]) for pair in test_pairs]
    fits = fit_eq(frames, test_pairs[0].sample_rate)
    eq_mae = sum(error * pair_raw.shape[0] for (_, error), (pair_raw, _) in zip(fits, frames, strict=True))
    return {"test_frames": raw.shape[0], "test_mae": mae(model, raw, processed),
            "identity_test_mae": mae(None, raw, processed), "eq_fit_test_mae": eq_mae / raw.shape[0]}


def train_tone(family: str, pairs: Sequence[Pair], config: ToneConfig,
               log: Callable[[str], None] = print) -> tuple[ToneDAE, dict]:
    """Train ``family``'s model on ``pairs``; returns (model, metadata with data sources and test figures)."""
    if len({pair.recording for pair in pairs}) < 2:
        raise MixingError(f"{family}: need clips of at least 2 recordings (one is held out for the test), got "
                          f"{len(pairs)} clips of {len({pair.recording for pair in pairs})}")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    started = time.monotonic()
    train_pairs, test_pairs = split_pairs(pairs, rng)
    augmented = augment(train_pairs, config, rng)
    raw, processed = pair_frames(train_pairs + augmented)
    log(f"{family}: {len(train_pairs)} train clips (+{len(augmented)} pitch-shifted), {len(test_pairs)} test "
        f"clips of {len({pair.recording for pair in test_pairs})} held-out recordings; {raw.shape[0]} train frames")
    model = ToneDAE(config.hidden_units, config.hidden_layers)
    model.fit_features(raw)
    pretrain_layerwise(model, raw, config, generator)
    model.train()
    _epochs(raw, processed, model.parameters(), model, config.finetune_epochs, config, generator)
    metadata = {
        "family": family,
        "config": asdict(config) | {"augment_semitones": list(config.augment_semitones)},
        "train_sources": sorted({pair.source for pair in train_pairs}),
        "test_sources": sorted({pair.source for pair in test_pairs}),
        "test_recordings": sorted({pair.recording for pair in test_pairs}),
        # Enough to make each test pair again (mixing.tone.data.console_pair) and measure it: bench/tone.py.
        "test_pairs": [{"source": pair.source, "recording": pair.recording, "tone_params": pair.tone_params}
                       for pair in test_pairs],
        "train_frames": raw.shape[0],
        "train_s": round(time.monotonic() - started, 1),
        **held_out_figures(model, test_pairs),
    }
    log(f"{family}: test MAE {metadata['test_mae']:.4f} (identity {metadata['identity_test_mae']:.4f}, fitted "
        f"EQ {metadata['eq_fit_test_mae']:.4f})")
    return model, metadata


def save_tone_checkpoint(path: Path, model: ToneDAE, metadata: dict) -> None:
    """Weights in float16 (half the size; inference upcasts) with the metadata that describes them."""
    state = {name: tensor.half() for name, tensor in model.state_dict().items()}
    torch.save({"version": CHECKPOINT_VERSION, "metadata": metadata, "state_dict": state}, path)


def load_tone_checkpoint(path: Path) -> tuple[ToneDAE, dict]:
    """(model in eval mode, float32, metadata). Raises MixingError naming the file when it is not one."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob["version"] != CHECKPOINT_VERSION:
            raise MixingError(f"{path}: tone checkpoint version {blob['version']}, this code reads "
                              f"{CHECKPOINT_VERSION}; retrain it with mixref train-tone")
        config = blob["metadata"]["config"]
        model = ToneDAE(config["hidden_units"], config["hidden_layers"])
        model.load_state_dict({name: tensor.float() for name, tensor in blob["state_dict"].items()})
    except (OSError, KeyError, RuntimeError, TypeError, pickle.UnpicklingError) as error:
        raise MixingError(f"{path}: not a tone checkpoint ({error})") from error
    model.eval()
    return model, blob["metadata"]

