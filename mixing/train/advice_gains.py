"""The learnt gain corrector of seed 003: per-track fader corrections predicted from two multitrack states.

Training pairs come from generated sessions (:mod:`mixing.datagen`): the balanced state is the expert start
(:func:`mixing.expert.starting_params`), the other the same session with every fader detuned by a seeded
uniform -8..+8 dB. For each track the features of both states, read through the session's renderer, are
(:data:`FEATURES`): its level in the mix under each, their difference, its bark-band levels' differences
(:data:`mixing.features.N_BARK_BANDS` of them, dB) and its compressor's ratio and threshold relative to its
level. A two-layer MLP (:class:`GainCorrector`) maps them to the fader move in dB, trained by Adam on the MSE.

Compared with the analytic solve of :mod:`mixing.advice` in bench/advice.py; the analytic one is what the
studio ships (BENCHMARKS.md, Advice), so no checkpoint is kept in the repository.

    python -m mixing.datagen /tmp/advice-train --count 24 --duration-s 8 --seed 100
    python -m mixing.train.advice_gains --sessions /tmp/advice-train --out /tmp/advice-gains.pt
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mixing.advice import band_levels_db, track_spectra
from mixing.audio import load_stems
from mixing.expert import starting_params
from mixing.features import N_BARK_BANDS
from mixing.params import MixParams
from mixing.session import MixSession

DETUNE_DB = 8.0
BAND_CLAMP_DB = 40.0
FEATURES = ("level_db", "target_level_db", "level_gap_db", *(f"band_{i:02d}_gap_db" for i in range(N_BARK_BANDS)),
            "comp_ratio", "comp_threshold_above_level_db")


class GainCorrector(nn.Module):
    """(tracks, features) standardized by the training set's mean and std -> (tracks,) fader moves in dB."""

    def __init__(self, features: int = len(FEATURES), hidden: int = 32):
        super().__init__()
        self.init_kwargs = {"features": features, "hidden": hidden}
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1))
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)


def _state(session: MixSession, params: MixParams) -> tuple[list[float], torch.Tensor]:
    levels = session.renderer.track_levels(params)
    return levels, band_levels_db(track_spectra(session.renderer.strip_outputs(params), session.sample_rate),
                                  session.sample_rate)


def pair_features(session: MixSession, current: MixParams, target: MixParams) -> torch.Tensor:
    """:data:`FEATURES` of each track for the pair: (tracks, features), float32."""
    target_levels, target_bands = _state(session, target)
    levels, bands = _state(session, current)
    rows = []
    for index, values in enumerate(current.tracks):
        band_gaps = (bands[index] - target_bands[index]).clamp(-BAND_CLAMP_DB, BAND_CLAMP_DB).tolist()
        rows.append([levels[index], target_levels[index], levels[index] - target_levels[index], *band_gaps,
                     values["comp_ratio"], values["comp_threshold_db"] - levels[index]])
    return torch.tensor(rows, dtype=torch.float32)


def predict_gains_db(model: GainCorrector, session: MixSession, current: MixParams, target: MixParams) -> list[float]:
    """Each track's fader after the predicted correction, dB."""
    with torch.no_grad():
        moves = model(pair_features(session, current, target))
    return [values["gain_db"] + float(move) for values, move in zip(current.tracks, moves, strict=True)]


def training_pairs(folder: Path, detunings: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (rows, features) and fader moves (rows,) of ``detunings`` detuned pairs per session in ``folder``."""
    inputs, labels = [], []
    sessions = sorted(path for path in folder.iterdir() if (path / "session.json").is_file())
    for number, path in enumerate(sessions):
        session = MixSession(load_stems(sorted(p for p in path.iterdir() if p.suffix == ".wav")), None, device="cpu")
        balanced = starting_params(session.tracks, session.sample_rate, list(session.stems.names))
        rng = np.random.default_rng(seed + number)
        for _ in range(detunings):
            current = copy.deepcopy(balanced)
            for values in current.tracks:
                values["gain_db"] += float(rng.uniform(-DETUNE_DB, DETUNE_DB))
            inputs.append(pair_features(session, current, balanced))
            labels.append(torch.tensor([t["gain_db"] - c["gain_db"] for c, t in zip(current.tracks, balanced.tracks,
                                                                                   strict=True)]))
    return torch.cat(inputs), torch.cat(labels).float()


def fit(inputs: torch.Tensor, labels: torch.Tensor, *, epochs: int = 600, seed: int = 0) -> GainCorrector:
    """Full-batch Adam on the MSE of the fader moves."""
    generator = torch.Generator().manual_seed(seed)
    model = GainCorrector()
    with torch.no_grad():
        for parameter in model.net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    model.mean.copy_(inputs.mean(dim=0))
    model.std.copy_(inputs.std(dim=0).clamp_min(1e-3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = (model(inputs) - labels).pow(2).mean()
        loss.backward()
        optimizer.step()
    return model


def save_model(model: GainCorrector, path: str | Path) -> None:
    torch.save({"class": "GainCorrector", "init_kwargs": model.init_kwargs, "features": list(FEATURES),
                "state_dict": model.state_dict()}, path)


def load_model(path: str | Path) -> GainCorrector:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("features") != list(FEATURES):
        raise ValueError(f"{path}: made for other features than this code's")
    model = GainCorrector(**saved["init_kwargs"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixing.train.advice_gains", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=Path, required=True, help="generated sessions (python -m mixing.datagen)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the checkpoint")
    parser.add_argument("--detunings", type=int, default=6, help="detuned pairs per session")
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    inputs, labels = training_pairs(args.sessions, args.detunings, args.seed)
    made_s = time.perf_counter() - began
    model = fit(inputs, labels, epochs=args.epochs, seed=args.seed)
    with torch.no_grad():
        rms_db = float((model(inputs) - labels).pow(2).mean().sqrt())
    save_model(model, args.out)
    print(f"{inputs.shape[0]} track rows ({made_s:.0f} s to make), training RMS error {rms_db:.2f} dB, "
          f"{time.perf_counter() - began:.0f} s in all; wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
