"""Test-time fitting: move console parameters until the mix's audio features match the reference.

The AF loss (seed 002, eq. 8) is minimized with Adam over the normalized
parameters on a few high-energy excerpts (``mixing.excerpts``), starting from
the controller's prediction or from the expert starting mix. The features of
the mix and of the reference are averaged over their excerpts before they are
compared: the excerpts hold different music, so only the style can match.

Before the search, the master EQ's band gains are set so that the bus EQ
closes the gap between the two long-term bark spectra (like a matching EQ).
The bark spectrum term dominates the AF loss of an unmatched mix, so this one
cheap step does much of the work that would otherwise take many Adam steps.

Two guards keep the result musical rather than a metric hack:
- a pull toward the starting point (``anchor_weight``), so that parameters
  the loss barely sees (a track's EQ under a dense mix) stay where the start
  put them instead of drifting;
- a balance floor: no track's level after its strip (gain, EQ, compressor)
  and pan may sink more than ``max_level_drop_db`` below the loudest track's
  unless it already sat that low at the start, so fitting cannot bury or mute
  a track to win a feature. Levels, not gain settings, are what is held: an EQ
  cut or a crushing compressor buries a track as surely as its fader.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from mixing.dsp.console import DifferentiableConsole
from mixing.dsp.eq import band_coefficients
from mixing.dsp.limiter import loudness_gain_db
from mixing.excerpts import reference_excerpts, stem_excerpts
from mixing.features import bark_band_centres_hz
from mixing.losses import WITHOUT_STEREO_TERMS, AudioFeatureLoss
from mixing.loudness import integrated_loudness_lufs
from mixing.params import (
    EQ_BANDS,
    LEARNABLE_MASTER_PARAMS,
    LEARNABLE_TRACK_PARAMS,
    MASTER_SPECS,
    MixParams,
    denormalize_tensor,
    normalize_tensor,
)

ProgressCallback = Callable[[dict], None]

# Fitting's share of an automatic mix that should take under a minute for 8 stems x 3 min on two CPU
# cores, beside master matching with its levelling (about 15 s there).
DEFAULT_TIME_BUDGET_S = 20.0

# The balance floor (see the module docstring), also held by mixing.balance and by the training's references.
MAX_LEVEL_DROP_DB = 20.0

# Keeps the starting point strictly inside (0, 1) so its logit is finite.
_NORM_MARGIN = 1e-3


@dataclass
class FitResult:
    """What fitting found, with the evidence."""

    params: MixParams
    start_loss: float
    loss: float
    terms: dict[str, float]
    iterations: int
    wall_s: float
    history: list[float] = field(default_factory=list)


def reference_loudness_lufs(reference: torch.Tensor, sample_rate: int) -> float:
    """The reference's integrated loudness, clamped into the master loudness range of the schema."""
    spec = MASTER_SPECS["master_loudness_lufs"]
    loudness = integrated_loudness_lufs(reference, sample_rate)
    if not math.isfinite(loudness):
        return spec.default
    return spec.clamp(loudness)


def _logit(norm: torch.Tensor) -> torch.Tensor:
    norm = norm.clamp(_NORM_MARGIN, 1 - _NORM_MARGIN)
    return torch.log(norm) - torch.log1p(-norm)


def _mean_features(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.mean(dim=0, keepdim=True) for name, value in features.items()}


def fit_params(
    tracks: Sequence[torch.Tensor],
    reference: torch.Tensor,
    sample_rate: int,
    *,
    start: MixParams,
    iterations: int = 150,
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S,
    learning_rate: float = 0.05,
    anchor_weight: float = 0.05,
    max_level_drop_db: float = MAX_LEVEL_DROP_DB,
    excerpt_count: int = 3,
    excerpt_s: float = 5.0,
    seed: int = 0,
    match_master_eq: bool = True,
    match_stereo: bool = True,
    progress: ProgressCallback | None = None,
    device: torch.device | str | None = None,
    fixed_track_params: Sequence[str] = (),
) -> FitResult:
    """Fit console parameters so that the mix's AF features match the reference's.

    Args:
        tracks: trimmed stems (``mixing.loudness.trim_tracks_to_input_level``), each
            (channels, samples), all the same length.
        reference: the reference song, (2, samples), at ``sample_rate``.
        start: where the search starts (controller prediction or expert start).
        iterations, time_budget_s: the search stops at whichever comes first; the budget is the search's own
            time, counted from its first step (picking the excerpts, the reference's features and the master EQ
            match come before it, and take longer the more tracks there are).
        max_level_drop_db: the balance floor (see the module docstring); the
            product guarantees 25 dB, and the floor sits below it with margin.
        match_master_eq: start by setting the master EQ gains from the spectral gap.
        match_stereo: compare stereo width and imbalance; False for a mono
            reference (``mixing.features.carries_stereo``), whose stereo field is no style to copy.
        progress: called after every step with ``{"stage", "progress", "iteration", "loss"}``.
        fixed_track_params: names of learnable track parameters that keep their start values in every track
            (their gradients are zeroed): the faders and pans a time-aligned reference measured.

    Returns the parameters with the lowest AF loss seen (the start counts too),
    with ``master_loudness_lufs`` set to the reference's loudness.
    """
    began = time.monotonic()
    device = torch.device(device) if device is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)

    track_excerpts, _ = stem_excerpts(tracks, sample_rate, count=excerpt_count, window_s=excerpt_s)
    ref_excerpts = reference_excerpts(reference, sample_rate, count=excerpt_count, window_s=excerpt_s).to(device)
    target_lufs = reference_loudness_lufs(reference, sample_rate)

    console = DifferentiableConsole([t.to(device) for t in track_excerpts], sample_rate, start.master).to(device)
    loss_fn = AudioFeatureLoss(sample_rate, weights=None if match_stereo else WITHOUT_STEREO_TERMS)
    # The console brings every excerpt to target_lufs with the same ungated meter,
    # so the reference excerpts are brought there too and only style differences remain.
    with torch.no_grad():
        ref_gain = loudness_gain_db(ref_excerpts, sample_rate, torch.tensor(target_lufs, device=device))
        ref_level = ref_excerpts * torch.pow(10.0, ref_gain / 20).reshape(-1, 1, 1)
        ref_features = _mean_features(loss_fn.features(ref_level))

    if match_master_eq:
        start = _with_matched_master_eq(start, console, loss_fn, ref_features, target_lufs, sample_rate, device)
    start_tracks = normalize_tensor(_stack_rows(start.tracks), LEARNABLE_TRACK_PARAMS).to(device)
    start_master = normalize_tensor(start.master, LEARNABLE_MASTER_PARAMS).to(device)
    # A tiny seeded jitter breaks ties between identical tracks; it is the only randomness.
    jitter = 1e-4 * torch.randn(start_tracks.shape, generator=generator).to(device)
    track_logits = _logit(start_tracks + jitter).requires_grad_()
    master_logits = _logit(start_master).requires_grad_()
    optimizer = torch.optim.Adam([track_logits, master_logits], lr=learning_rate)
    learnable_names = [spec.name for spec in LEARNABLE_TRACK_PARAMS]
    fixed_columns = [learnable_names.index(name) for name in fixed_track_params]

    allowed_drop_db = None

    def evaluate() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        nonlocal allowed_drop_db
        track_norm, master_norm = torch.sigmoid(track_logits), torch.sigmoid(master_logits)
        mix, levels_db = console.mix_and_track_levels(track_norm, master_norm, target_lufs)
        af_loss, terms = loss_fn.compare(_mean_features(loss_fn.features(mix)), ref_features)
        anchor = (track_norm - start_tracks).pow(2).mean() + (master_norm - start_master).pow(2).mean()
        drop_db = levels_db.max() - levels_db
        if allowed_drop_db is None:
            # Measured at the start: a track that started further down than the floor may stay there.
            allowed_drop_db = torch.clamp(drop_db.detach(), min=max_level_drop_db)
        floor = torch.relu(drop_db - allowed_drop_db).pow(2).mean()
        return af_loss + anchor_weight * anchor + floor, af_loss, terms

    best_loss, best_terms = math.inf, {}
    best_tracks, best_master = start_tracks.clone(), start_master.clone()
    history: list[float] = []
    start_loss = math.nan
    iteration = 0
    stepping_began = time.monotonic()
    for iteration in range(iterations + 1):
        objective, af_loss, terms = evaluate()
        value = float(af_loss.detach())
        history.append(value)
        if iteration == 0:
            start_loss = value
        if value < best_loss and math.isfinite(value):
            best_loss, best_terms = value, {name: float(term.detach()) for name, term in terms.items()}
            best_tracks = torch.sigmoid(track_logits).detach().clone()
            best_master = torch.sigmoid(master_logits).detach().clone()
        elapsed = time.monotonic() - stepping_began
        if progress is not None:
            fraction = iteration / iterations if iterations else 1.0
            if time_budget_s:
                fraction = max(fraction, elapsed / time_budget_s)
            progress({"stage": "fitting", "progress": min(fraction, 1.0), "iteration": iteration, "loss": value})
        if iteration == iterations or (time_budget_s is not None and elapsed >= time_budget_s):
            break
        optimizer.zero_grad()
        objective.backward()
        if fixed_columns:
            # Adam never moves a parameter whose gradient has always been zero.
            track_logits.grad[:, fixed_columns] = 0.0
        optimizer.step()

    params = _to_mix_params(best_tracks.cpu(), best_master.cpu(), start)
    params.master["master_loudness_lufs"] = target_lufs
    return FitResult(params, start_loss, best_loss, best_terms, iteration, time.monotonic() - began, history)


def _stack_rows(rows: Sequence[dict[str, float]]) -> dict[str, torch.Tensor]:
    return {spec.name: torch.tensor([row[spec.name] for row in rows], dtype=torch.float32)
            for spec in LEARNABLE_TRACK_PARAMS}


def _to_mix_params(track_norm: torch.Tensor, master_norm: torch.Tensor, start: MixParams) -> MixParams:
    """Values in units for the learnable parameters; the others are kept from ``start``."""
    params = copy.deepcopy(start)
    track_values = denormalize_tensor(track_norm, LEARNABLE_TRACK_PARAMS)
    for i, row in enumerate(params.tracks):
        row.update({name: float(values[i]) for name, values in track_values.items()})
    master_values = denormalize_tensor(master_norm, LEARNABLE_MASTER_PARAMS)
    params.master.update({name: float(value) for name, value in master_values.items()})
    return params


# The matching EQ leaves headroom below the schema's limits for the search to use.
_MATCH_EQ_LIMIT_DB = 12.0
_MATCH_EQ_ITERATIONS = 4
_JACOBIAN_STEP_DB = 1.0


def _eq_gain_db_at(
    params: dict[str, torch.Tensor], sample_rate: int, freqs_hz: torch.Tensor, prefix: str
) -> torch.Tensor:
    """Magnitude in dB of 6-band EQs (params of shape (batch,)) at ``freqs_hz`` (points,): (batch, points)."""
    z_inv = torch.exp(-1j * 2 * math.pi * freqs_hz.double() / sample_rate)
    powers = torch.stack([torch.ones_like(z_inv), z_inv, z_inv * z_inv])  # (3, points)
    response = torch.ones(1, len(freqs_hz), dtype=powers.dtype)
    for b, a in band_coefficients(params, sample_rate, prefix):
        response = response * (b.to(powers.dtype) @ powers) / (a.to(powers.dtype) @ powers)
    return 20 * torch.log10(response.abs().clamp_min(1e-12))


@torch.no_grad()
def _with_matched_master_eq(start, console, loss_fn, ref_features, target_lufs, sample_rate, device) -> MixParams:
    """``start`` with master EQ gains that close the gap between the mix's and the reference's bark spectra."""
    track_norm = normalize_tensor(_stack_rows(start.tracks), LEARNABLE_TRACK_PARAMS).to(device)
    master_norm = normalize_tensor(start.master, LEARNABLE_MASTER_PARAMS).to(device)
    mix = console(track_norm, master_norm, target_lufs)
    mix_bark = loss_fn.features(mix)["bark_spectrum"].mean(dim=(0, 1))
    ref_bark = ref_features["bark_spectrum"].mean(dim=(0, 1))
    # bark_spectrum is a natural log of magnitude.
    gap_db = (ref_bark - mix_bark).cpu().double() * (20 / math.log(10))
    freqs_hz = torch.as_tensor(bark_band_centres_hz(sample_rate, loss_fn.n_fft, loss_fn.n_bands), dtype=torch.float64)

    gain_names = [f"master_eq_{key}_gain_db" for key, *_ in EQ_BANDS]
    gains = torch.tensor([start.master[name] for name in gain_names], dtype=torch.float64)

    def response_db(candidates: torch.Tensor) -> torch.Tensor:
        """EQ magnitude (candidates, points) for gain vectors (candidates, bands), other settings from start."""
        params = {name: torch.full((len(candidates),), float(value), dtype=torch.float64)
                  for name, value in start.master.items()}
        params.update({name: candidates[:, i] for i, name in enumerate(gain_names)})
        return _eq_gain_db_at(params, sample_rate, freqs_hz, "master_")

    # The gap's mean is kept: the loudness stage matches K-weighted loudness,
    # which leaves the bark spectra offset whenever the two spectra differ in
    # shape. (A second round of measuring and matching gained little: what is
    # left after one is mostly level and stereo, for the search to handle.)
    target_db = response_db(gains[None])[0] + gap_db
    # Gauss-Newton on the band gains: the dB response is nearly linear in them.
    for _ in range(_MATCH_EQ_ITERATIONS):
        probes = gains + _JACOBIAN_STEP_DB * torch.eye(len(gains), dtype=torch.float64)
        responses = response_db(torch.cat([gains[None], probes]))
        jacobian = ((responses[1:] - responses[0]) / _JACOBIAN_STEP_DB).T  # (points, bands)
        step = torch.linalg.lstsq(jacobian, (target_db - responses[0])[:, None]).solution[:, 0]
        gains = (gains + step).clamp(-_MATCH_EQ_LIMIT_DB, _MATCH_EQ_LIMIT_DB)
    matched = copy.deepcopy(start)
    matched.master.update({name: float(gains[i]) for i, name in enumerate(gain_names)})
    return matched
