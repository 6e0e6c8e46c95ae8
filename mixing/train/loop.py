"""The training loop for the controller, with Diff-MST's two data regimes (seed 002, section 3).

Method 1 (self-supervised, known answer): a window of ``2 * excerpt_s`` is cut
from a session, mixed by the differentiable console with
:func:`~mixing.train.random_params.random_plausible_params` (buried tracks lifted by
:func:`~mixing.train.random_params.lift_buried_tracks`), and both the mix
and the tracks are split in halves. The controller gets the tracks of half B
and the mix of half A as its reference; the console mixes half B with the
predicted parameters and the loss compares that with the mix of half B:
MRSTFT (auraloss) + AF, both at matched loudness. As the random parameters are
known, an auxiliary MSE between predicted and drawn normalized parameters can
be added (``param_loss_weight``; 0 switches it off). It is not in the paper:
it gives the network a direct signal for every parameter, which speeds up
learning a lot when only a few thousand CPU steps are affordable.

Method 2 (real references): the tracks of one session and a window of an
unrelated reference song; AF loss only, since there is no ground truth.

Randomness: the examples of step ``k`` depend only on ``(seed, k)``, so a
resumed run continues the same stream, and worker processes (``workers``) make
the same examples as the training process (up to the rounding of sums, as a
worker computes on one thread).
Adam's moments are not saved in checkpoints and restart on resume.

Where the work runs: the controller, the console's FFT EQ and the losses on
``device`` (CUDA when there is one); the console's compressor on the CPU (see
:mod:`mixing.dsp.compressor`); the examples, which render whole windows
through the full-length console, on the CPU, ahead of the steps in
``workers`` processes, so that a GPU is not left waiting for them.
"""
from __future__ import annotations

import math
import multiprocessing
import pickle
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass

import numpy as np
import torch

from mixing import SAMPLE_RATE
from mixing.controller.checkpoint import load_checkpoint, save_checkpoint
from mixing.controller.model import (
    REFERENCE_INPUT_LUFS,
    Controller,
    collate_sessions,
    default_config,
    pack_session,
    tiny_config,
)
from mixing.device import pick_device
from mixing.dsp.console import DifferentiableConsole, IncrementalRenderer
from mixing.dsp.limiter import loudness_gain_db
from mixing.losses import AudioFeatureLoss, mrstft_loss
from mixing.loudness import normalize_to_lufs
from mixing.params import LEARNABLE_MASTER_PARAMS, LEARNABLE_TRACK_PARAMS, normalize_tensor
from mixing.train.data import ReferenceFolder, SessionFolder
from mixing.train.random_params import lift_buried_tracks, random_plausible_params

MODEL_CONFIGS: dict[str, Callable[[], dict]] = {"default": default_config, "tiny": tiny_config}
_GRAD_CLIP_NORM = 1.0


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in the checkpoint's ``training_info``.

    ``steps`` counts the steps of this run (a resumed run adds them to the
    checkpoint's). ``track_range``: tracks per example, inclusive. Loss weights:
    ``mrstft_weight`` and ``param_loss_weight`` apply to method 1 only.
    ``device``: where the controller trains (None: :func:`mixing.device.pick_device`).
    ``workers``: processes that make the examples of the coming steps (0: this
    process makes each step's examples when it needs them).
    """

    sessions: str
    method: int
    steps: int
    out: str
    references: str | None = None
    batch_size: int = 2
    learning_rate: float = 1e-4
    excerpt_s: float = 5.0
    track_range: tuple[int, int] = (2, 8)
    model_config: str = "default"
    seed: int = 0
    time_budget_s: float | None = None
    resume: str | None = None
    mrstft_weight: float = 1.0
    af_weight: float = 1.0
    param_loss_weight: float = 1.0
    log_every: int = 10
    save_every: int = 100
    device: str | None = None
    workers: int = 0

    def __post_init__(self):
        if self.method not in (1, 2):
            raise ValueError(f"method must be 1 or 2, got {self.method}")
        if self.method == 2 and not self.references:
            raise ValueError("method 2 needs a folder of reference songs")
        if self.model_config not in MODEL_CONFIGS:
            raise ValueError(f"model_config must be one of {sorted(MODEL_CONFIGS)}, got {self.model_config!r}")
        if self.steps < 0 or self.batch_size < 1 or self.excerpt_s <= 0 or self.workers < 0:
            raise ValueError("steps must be >= 0, batch_size >= 1, excerpt_s > 0 and workers >= 0")


@dataclass
class _Example:
    """One training example: model inputs, the console's target, and (method 1) the drawn parameters."""

    tracks: list[torch.Tensor]  # each (channels, samples)
    reference: torch.Tensor  # (2, samples) at REFERENCE_INPUT_LUFS
    target: torch.Tensor  # (2, samples) the mix to match, at REFERENCE_INPUT_LUFS (ungated meter)
    track_norm: torch.Tensor | None = None  # (tracks, params)
    master_norm: torch.Tensor | None = None  # (params,)

    def to(self, device: torch.device) -> _Example:
        def move(tensor):
            return None if tensor is None else tensor.to(device)

        return _Example([track.to(device) for track in self.tracks], move(self.reference), move(self.target),
                        move(self.track_norm), move(self.master_norm))


def _at_reference_level(mix: torch.Tensor) -> torch.Tensor:
    """(2, samples) scaled with the console's own (ungated) meter, so target and prediction share a level."""
    gain_db = loudness_gain_db(mix.unsqueeze(0), SAMPLE_RATE, REFERENCE_INPUT_LUFS)
    return mix * torch.pow(10.0, gain_db / 20.0)


def _method1_example(
    sessions: SessionFolder, config: TrainConfig, rng: np.random.Generator, generator: torch.Generator
) -> _Example:
    half = round(config.excerpt_s * SAMPLE_RATE)
    tracks = sessions.sample(rng, samples=2 * half, track_range=config.track_range, parts=2)
    params = lift_buried_tracks(random_plausible_params(len(tracks), generator),
                                IncrementalRenderer(tracks, SAMPLE_RATE))
    track_norm = normalize_tensor(
        {spec.name: torch.tensor([row[spec.name] for row in params.tracks]) for spec in LEARNABLE_TRACK_PARAMS},
        LEARNABLE_TRACK_PARAMS,
    ).clamp(0.0, 1.0)
    master_norm = normalize_tensor(params.master, LEARNABLE_MASTER_PARAMS).clamp(0.0, 1.0)
    with torch.no_grad():
        mix = DifferentiableConsole(tracks, SAMPLE_RATE)(track_norm, master_norm, REFERENCE_INPUT_LUFS)
    reference = normalize_to_lufs(mix[:, :half].contiguous(), SAMPLE_RATE, REFERENCE_INPUT_LUFS)[0]
    return _Example(
        tracks=[track[:, half:] for track in tracks],
        reference=reference,
        target=_at_reference_level(mix[:, half:]),
        track_norm=track_norm,
        master_norm=master_norm,
    )


def _method2_example(
    sessions: SessionFolder, references: ReferenceFolder, config: TrainConfig, rng: np.random.Generator
) -> _Example:
    samples = round(config.excerpt_s * SAMPLE_RATE)
    tracks = sessions.sample(rng, samples=samples, track_range=config.track_range)
    reference = references.sample(rng, samples=samples)
    return _Example(tracks=tracks, reference=reference, target=_at_reference_level(reference))


class _Losses(torch.nn.Module):
    """Weighted loss terms of a batch: returns (total, {term: value})."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        self.af = AudioFeatureLoss(SAMPLE_RATE)
        self.mrstft = mrstft_loss()

    def forward(
        self, predicted: torch.Tensor, examples: list[_Example], track_norm: torch.Tensor, master_norm: torch.Tensor
    ):
        """predicted: (batch, 2, samples); track_norm (batch, tracks, params), master_norm (batch, params)."""
        target = torch.stack([example.target for example in examples])
        terms = {"af": self.config.af_weight * self.af(predicted, target)[0]}
        if self.config.method == 1:
            terms["mrstft"] = self.config.mrstft_weight * self.mrstft(predicted, target)
            if self.config.param_loss_weight:
                errors = []
                for i, example in enumerate(examples):
                    count = len(example.tracks)
                    errors.append(
                        0.5 * (track_norm[i, :count] - example.track_norm).pow(2).mean()
                        + 0.5 * (master_norm[i] - example.master_norm).pow(2).mean()
                    )
                terms["param"] = self.config.param_loss_weight * torch.stack(errors).mean()
        return sum(terms.values()), terms


def _step_generators(seed: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    rng = np.random.default_rng([seed, step])
    return rng, torch.Generator().manual_seed(int(rng.integers(2**62)))


def _step_examples(config: TrainConfig, sessions: SessionFolder, references: ReferenceFolder | None,
                   step: int) -> list[_Example]:
    """The batch of step ``step``, on the CPU: a function of ``(config.seed, step)`` and the data alone."""
    rng, generator = _step_generators(config.seed, step)
    if config.method == 1:
        return [_method1_example(sessions, config, rng, generator) for _ in range(config.batch_size)]
    return [_method2_example(sessions, references, config, rng) for _ in range(config.batch_size)]


_worker_data: tuple | None = None


def _start_worker(config: TrainConfig, sessions: SessionFolder, references: ReferenceFolder | None) -> None:
    global _worker_data
    _worker_data = (config, sessions, references)
    # Each worker makes whole batches on one core; threads inside it would only contend with the other workers.
    torch.set_num_threads(1)
    import numba

    numba.set_num_threads(1)


def _worker_examples(step: int) -> bytes:
    # Pickled here by value: torch's own reductions would pass every tensor as a shared-memory handle.
    return pickle.dumps(_step_examples(*_worker_data, step))


def _batches(config: TrainConfig, sessions: SessionFolder, references: ReferenceFolder | None,
             first_step: int, end_step: int) -> Iterator[list[_Example]]:
    """The batches of steps ``first_step`` to ``end_step - 1`` in order, made ``config.workers`` steps ahead."""
    if config.workers == 0:
        for step in range(first_step, end_step):
            yield _step_examples(config, sessions, references, step)
        return
    # spawn, not fork: the parent may hold a CUDA context and OpenMP threads, which a forked child cannot use.
    pool = ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(config, sessions, references))
    pending: deque[Future] = deque()
    next_step = first_step
    try:
        while next_step < end_step or pending:
            while next_step < end_step and len(pending) < 2 * config.workers:
                pending.append(pool.submit(_worker_examples, next_step))
                next_step += 1
            yield pickle.loads(pending.popleft().result())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def train(config: TrainConfig, log: Callable[[str], None] | None = None) -> Controller:
    """Train (or, with ``config.resume``, continue training) a controller and save it to ``config.out``.

    Saves every ``save_every`` steps and at the end, which comes after
    ``config.steps`` steps or once ``time_budget_s`` has passed. Logs the mean
    loss terms every ``log_every`` steps through ``log`` (default: stderr).
    Returns the model with ``training_info`` filled in.

    Seeds torch's global random state (dropout draws from it) from ``seed`` and the start step.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    began = time.monotonic()
    sessions = SessionFolder(config.sessions)
    references = ReferenceFolder(config.references) if config.method == 2 else None
    found = f"{len(sessions)} sessions" + (f" and {len(references)} references" if references else "")
    log(f"indexed {found} in {time.monotonic() - began:.1f} s")

    previous_stages: list[dict] = []
    first_step = 0
    if config.resume:
        model = load_checkpoint(config.resume)
        previous_stages = list(model.training_info.get("stages", []))
        first_step = int(model.training_info.get("steps", 0))
        log(f"resumed {config.resume} at step {first_step}")
    torch.manual_seed(config.seed * 1_000_003 + first_step)
    if not config.resume:
        model = Controller(**MODEL_CONFIGS[config.model_config]())
    device = torch.device(config.device) if config.device else pick_device()
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    losses = _Losses(config).to(device)

    recent: dict[str, list[float]] = {}
    history: list[dict] = []
    last_logged: dict[str, float] = {}
    step = first_step
    train_began = time.monotonic()

    def info() -> dict:
        stage = {
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
            "first_step": first_step,
            "last_step": step,
            "wall_s": round(time.monotonic() - train_began, 1),
            "device": str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})",
            "num_sessions": len(sessions),
            "num_references": len(references) if references else 0,
            "final_losses": last_logged,
            "loss_history": history,
        }
        stages = [*previous_stages, stage]
        return {
            "steps": step,
            "wall_s": round(sum(s["wall_s"] for s in stages), 1),
            "method": config.method,
            "final_losses": last_logged,
            "stages": stages,
        }

    end_step = first_step + config.steps
    with closing(_batches(config, sessions, references, first_step, end_step)) as batches:
        while step < end_step:
            if config.time_budget_s is not None and time.monotonic() - train_began >= config.time_budget_s:
                log(f"time budget of {config.time_budget_s:.0f} s reached at step {step}")
                break
            examples = [example.to(device) for example in next(batches)]
            audio, track_mask, stereo = collate_sessions([pack_session(example.tracks) for example in examples])
            reference = torch.stack([example.reference for example in examples])
            track_norm, master_norm = model(audio, track_mask, stereo, reference)
            predicted = torch.stack([
                DifferentiableConsole(example.tracks, SAMPLE_RATE)(
                    track_norm[i, : len(example.tracks)], master_norm[i], REFERENCE_INPUT_LUFS
                )
                for i, example in enumerate(examples)
            ])
            total, terms = losses(predicted, examples, track_norm, master_norm)
            if not math.isfinite(total.item()):
                log(f"step {step}: non-finite loss {total.item()}; batch skipped")
                step += 1
                continue
            optimizer.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), _GRAD_CLIP_NORM)
            optimizer.step()
            step += 1

            for name, value in {"total": total, **terms}.items():
                recent.setdefault(name, []).append(value.item())
            if step % config.log_every == 0 or step == end_step:
                last_logged = {name: round(float(np.mean(values)), 5) for name, values in recent.items()}
                history.append({"step": step, **last_logged})
                recent.clear()
                elapsed = time.monotonic() - train_began
                terms_text = " ".join(f"{name}={value:.4f}" for name, value in last_logged.items())
                log(f"step {step} ({elapsed:.0f} s, {elapsed / (step - first_step):.2f} s/step) {terms_text}")
            if step % config.save_every == 0:
                save_checkpoint(config.out, model, training_info=info())
    if recent:
        last_logged = {name: round(float(np.mean(values)), 5) for name, values in recent.items()}
        history.append({"step": step, **last_logged})
    model.training_info = info()
    save_checkpoint(config.out, model, training_info=model.training_info)
    log(f"saved {config.out} after {step} steps ({model.training_info['wall_s']:.0f} s of training in all)")
    return model.eval()

