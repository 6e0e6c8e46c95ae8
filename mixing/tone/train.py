"""Training a tone model: greedy layer-wise pretraining of the hidden layers, then fine-tuning raw -> processed
with Adam on the mean absolute error of magnitude frames; test clips (10 %, never augmented) give the test MAE
of the model and of the identity baseline (raw magnitude as the output)."""
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
    seed: int = 0


def split_pairs(pairs: Sequence[Pair], rng: random.Random) -> tuple[list[Pair], list[Pair]]:
    """(train, test): ``TEST_FRACTION`` of the clips (at least one when there are two or more) held out."""
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    test_count = max(1, round(TEST_FRACTION * len(shuffled))) if len(shuffled) >= 2 else 0
    return shuffled[test_count:], shuffled[:test_count]


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


def train_tone(family: str, pairs: Sequence[Pair], config: ToneConfig,
               log: Callable[[str], None] = print) -> tuple[ToneDAE, dict]:
    """Train ``family``'s model on ``pairs``; returns (model, metadata with data sources and test figures)."""
    if len(pairs) < 2:
        raise MixingError(f"{family}: need at least 2 clips (one is held out for the test), got {len(pairs)}")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    started = time.monotonic()
    train_pairs, test_pairs = split_pairs(pairs, rng)
    augmented = [pitch_shifted(pair, semitones) for pair in train_pairs for semitones in config.augment_semitones]
    raw, processed = pair_frames(train_pairs + augmented)
    test_raw, test_processed = pair_frames(test_pairs)
    log(f"{family}: {len(train_pairs)} train clips (+{len(augmented)} pitch-shifted), {len(test_pairs)} test; "
        f"{raw.shape[0]} train frames")
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
        "train_frames": raw.shape[0],
        "test_frames": test_raw.shape[0],
        "test_mae": mae(model, test_raw, test_processed),
        "identity_test_mae": mae(None, test_raw, test_processed),
        "train_s": round(time.monotonic() - started, 1),
    }
    log(f"{family}: test MAE {metadata['test_mae']:.4f} (identity {metadata['identity_test_mae']:.4f})")
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

