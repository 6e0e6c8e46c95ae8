"""The baseline a tone model has to beat to be worth more than our console: the channel strip's own EQ (the
schema's gain and 6-band EQ, ``mixing.params.TRACK_PARAMS``) fitted to map one pair's raw magnitude frames to
its processed ones.

The fit minimises the same figure the tone model is judged by (mean absolute error of linear magnitude frames)
with Adam through the differentiable EQ response (``mixing.dsp.eq.eq_response``), the parameters kept inside
their schema ranges by a sigmoid on the normalised values. One static setting per pair, fitted on that pair
itself: the best any fixed strip EQ could do there, not a prediction.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mixing.dsp.eq import eq_response
from mixing.dsp.stages import db_to_amplitude
from mixing.params import TRACK_PARAMS, defaults, normalize_tensor
from mixing.tone.model import N_BINS, N_FFT

EQ_FIT_PARAMS = tuple(spec for spec in TRACK_PARAMS if spec.name == "gain_db" or spec.group == "eq")
EQ_FIT_STEPS = 300
EQ_FIT_LEARNING_RATE = 0.05
# Normalised values this close to 0 or 1 would need infinite logits.
_EDGE = 1e-3


def _params_from_logits(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Schema values in units, each (batch,), from unconstrained ``logits`` (batch, params)."""
    norm = torch.sigmoid(logits)
    return {spec.name: spec.denormalize(norm[:, i]) for i, spec in enumerate(EQ_FIT_PARAMS)}


def eq_magnitude(params: Mapping[str, torch.Tensor], sample_rate: int) -> torch.Tensor:
    """|gain * EQ| at the N_BINS bins of the tone model's STFT for ``params`` (gain_db and eq_*, each (batch,)):
    (batch, N_BINS)."""
    response = eq_response(params, sample_rate, N_FFT).abs()
    return response * db_to_amplitude(params["gain_db"]).to(response.dtype).reshape(-1, 1)


def _errors(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], magnitude: torch.Tensor) -> torch.Tensor:
    """Each pair's MAE under its row of ``magnitude`` (pairs, N_BINS): (pairs,)."""
    return torch.stack([(raw * gain - processed).abs().mean()
                        for (raw, processed), gain in zip(pairs, magnitude, strict=True)])


def fit_eq(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], sample_rate: int, steps: int = EQ_FIT_STEPS,
           learning_rate: float = EQ_FIT_LEARNING_RATE) -> list[tuple[dict[str, float], float]]:
    """For each (raw, processed) pair of magnitude frames (each (frames, N_BINS), frames may differ between
    pairs), the strip setting whose magnitude response best maps raw to processed: a list of (gain_db and eq_*
    values in units, the MAE of that fitted EQ on the pair's frames), in the order of ``pairs``.

    Starts from the schema defaults (a flat EQ, the identity); ``steps`` Adam steps of ``learning_rate`` on the
    logits of the normalised values, all pairs fitted at once (their errors summed; each setting moves only its
    own pair's error).
    """
    for raw, processed in pairs:
        if raw.shape != processed.shape or raw.ndim != 2 or raw.shape[-1] != N_BINS:
            raise ValueError(f"expected raw and processed of shape (frames, {N_BINS}), got {tuple(raw.shape)} "
                             f"and {tuple(processed.shape)}")
    start = normalize_tensor(defaults(EQ_FIT_PARAMS), EQ_FIT_PARAMS).clamp(_EDGE, 1 - _EDGE)
    logits = torch.logit(start).repeat(len(pairs), 1).requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=learning_rate)
    for _ in range(steps):
        loss = _errors(pairs, eq_magnitude(_params_from_logits(logits), sample_rate)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        params = _params_from_logits(logits)
        errors = _errors(pairs, eq_magnitude(params, sample_rate))
    return [({name: float(value[i]) for name, value in params.items()}, float(errors[i]))
            for i in range(len(pairs))]
