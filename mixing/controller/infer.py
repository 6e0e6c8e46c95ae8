"""Run a controller on one session and turn its outputs into console parameters."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from mixing.controller.model import Controller, collate_sessions, pack_session
from mixing.params import (
    LEARNABLE_MASTER_PARAMS,
    LEARNABLE_TRACK_PARAMS,
    MASTER_PARAMS,
    TRACK_PARAMS,
    MixParams,
    defaults,
    denormalize_tensor,
)


def predict_params(
    model: Controller, tracks: Sequence[torch.Tensor], reference: torch.Tensor, sample_rate: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predict normalized parameters for one session, without gradients, on the model's device.

    tracks: one ``(channels, samples)`` tensor per track, 1 or 2 channels, equal
    samples, each loudness-normalized to :data:`mixing.params.TRACK_INPUT_LUFS`.
    reference: ``(2, samples)``, loudness-normalized to
    :data:`mixing.controller.REFERENCE_INPUT_LUFS`. Pass excerpts (5-10 s is
    what the controller sees in training), not whole songs.
    Returns ``track_norm (tracks, params)`` and ``master_norm (params,)`` on the CPU,
    over the learnable parameters in schema order.
    """
    if sample_rate != model.sample_rate:
        raise ValueError(f"audio at {sample_rate} Hz; this controller takes {model.sample_rate} Hz (resample first)")
    if reference.dim() != 2 or reference.shape[0] != 2:
        raise ValueError(f"expected reference of shape (2, samples), got {tuple(reference.shape)}")
    device = model.device
    audio, track_mask, stereo = collate_sessions([pack_session([track.to(device, torch.float32) for track in tracks])])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            track_norm, master_norm = model(audio, track_mask, stereo, reference.to(device, torch.float32).unsqueeze(0))
    finally:
        model.train(was_training)
    return track_norm[0].cpu(), master_norm[0].cpu()


def norm_to_mix_params(track_norm: torch.Tensor, master_norm: torch.Tensor) -> MixParams:
    """Turn ``track_norm (tracks, params)`` and ``master_norm (params,)`` into parameters in units.

    Parameters the controller does not predict (master loudness and ceiling)
    take their schema defaults; set them from measurements or the user afterwards.
    """
    if track_norm.dim() != 2 or track_norm.shape[1] != len(LEARNABLE_TRACK_PARAMS):
        raise ValueError(
            f"expected track_norm of shape (tracks, {len(LEARNABLE_TRACK_PARAMS)}), got {tuple(track_norm.shape)}"
        )
    if master_norm.shape != (len(LEARNABLE_MASTER_PARAMS),):
        raise ValueError(
            f"expected master_norm of shape ({len(LEARNABLE_MASTER_PARAMS)},), got {tuple(master_norm.shape)}"
        )
    track_values = _in_units(track_norm, LEARNABLE_TRACK_PARAMS)
    tracks = []
    for i in range(track_norm.shape[0]):
        values = defaults(TRACK_PARAMS)
        values.update({name: column[i] for name, column in track_values.items()})
        tracks.append(values)
    master = defaults(MASTER_PARAMS)
    master_values = _in_units(master_norm.unsqueeze(0), LEARNABLE_MASTER_PARAMS)
    master.update({name: column[0] for name, column in master_values.items()})
    return MixParams(tracks, master)


def _in_units(norm: torch.Tensor, specs) -> dict[str, list[float]]:
    values = denormalize_tensor(norm.detach().cpu().double(), specs)
    # exp(log(x)) can land a rounding error outside the range, which presets would reject.
    return {spec.name: [spec.clamp(float(v)) for v in values[spec.name]] for spec in specs}
