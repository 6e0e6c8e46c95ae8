"""Self-describing controller checkpoints.

A checkpoint is a ``torch.save`` of a dict holding only plain types and
tensors, so it loads with ``torch.load(weights_only=True)`` (no pickled code):

- ``format``: :data:`CHECKPOINT_FORMAT`, ``model_class``: the class name,
- ``config``: the model's init kwargs,
- ``schema_version``, ``track_param_names``, ``master_param_names``: what the
  outputs mean, checked against :mod:`mixing.params` on load,
- ``training_info``: a JSON-able dict (steps, data recipe, wall time, ...),
- ``state_dict`` and ``state_dict_sha256``, a checksum over its tensors.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from mixing.controller.model import Controller
from mixing.errors import CheckpointError
from mixing.params import LEARNABLE_MASTER_PARAMS, LEARNABLE_TRACK_PARAMS, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION

CHECKPOINT_FORMAT = "mixref-controller-1"
_MODEL_CLASSES = {cls.__name__: cls for cls in (Controller,)}
_REQUIRED_KEYS = (
    "format",
    "model_class",
    "config",
    "schema_version",
    "track_param_names",
    "master_param_names",
    "training_info",
    "state_dict",
    "state_dict_sha256",
)


def state_dict_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Hex sha256 over each tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: Controller, *, training_info: dict) -> None:
    """Write ``model`` with its description to ``path``, atomically (a temp file, then a rename)."""
    if type(model).__name__ not in _MODEL_CLASSES:
        raise TypeError(f"cannot checkpoint a {type(model).__name__}; expected one of {sorted(_MODEL_CLASSES)}")
    try:
        training_info = json.loads(json.dumps(training_info))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"training_info must be JSON-able: {exc}") from exc
    if not isinstance(training_info, dict):
        raise ValueError("training_info must be a dict")
    state_dict = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_class": type(model).__name__,
        "config": model.config,
        "schema_version": SCHEMA_VERSION,
        "track_param_names": [spec.name for spec in LEARNABLE_TRACK_PARAMS],
        "master_param_names": [spec.name for spec in LEARNABLE_MASTER_PARAMS],
        "training_info": training_info,
        "state_dict": state_dict,
        "state_dict_sha256": state_dict_sha256(state_dict),
    }
    path = Path(path)
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, temp_path)
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = None) -> Controller:
    """Rebuild the controller saved at ``path``, in eval mode, with ``training_info`` filled in.

    Raises CheckpointError when the file is missing or unreadable, was made for
    another parameter schema, or its weights do not match their checksum or config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"controller checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch.load raises many types (pickle, zip, EOF, runtime) on damaged files.
        raise CheckpointError(
            f"{path.name} is not a readable controller checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path.name} is not a Mixref controller checkpoint (format {CHECKPOINT_FORMAT} expected)"
        )
    missing = [key for key in _REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path.name} lacks {', '.join(missing)}")
    _check_schema(path.name, payload)

    model_class = _MODEL_CLASSES.get(payload["model_class"])
    if model_class is None:
        raise CheckpointError(f"{path.name} holds an unknown model class {payload['model_class']!r}")
    state_dict = payload["state_dict"]
    if (
        not isinstance(state_dict, dict)
        or not all(isinstance(tensor, torch.Tensor) for tensor in state_dict.values())
        or state_dict_sha256(state_dict) != payload["state_dict_sha256"]
    ):
        raise CheckpointError(
            f"{path.name}: the weights do not match their checksum (the file is damaged or was edited)"
        )
    try:
        model = model_class(**payload["config"])
        model.load_state_dict(state_dict)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name}: the weights do not fit the stored config ({exc})") from exc
    if map_location is not None:
        model.to(map_location)
    model.training_info = payload["training_info"]
    return model.eval()


def _check_schema(name: str, payload: dict) -> None:
    # Schema versions differ in parameters the controller does not predict;
    # the names checked below are what a checkpoint's outputs must mean.
    if payload["schema_version"] not in READABLE_SCHEMA_VERSIONS:
        raise CheckpointError(
            f"{name} was trained for parameter schema version {payload['schema_version']!r}; "
            f"this console uses version {SCHEMA_VERSION}"
        )
    for key, specs in (("track_param_names", LEARNABLE_TRACK_PARAMS), ("master_param_names", LEARNABLE_MASTER_PARAMS)):
        expected = [spec.name for spec in specs]
        stored = payload[key]
        if stored != expected:
            if not isinstance(stored, list):
                raise CheckpointError(f"{name}: {key} is not a list of names")
            difference = next(
                (f"position {i}: {s!r} instead of {e!r}"
                 for i, (s, e) in enumerate(zip(stored, expected, strict=False)) if s != e),
                f"{len(stored)} names instead of {len(expected)}",
            )
            raise CheckpointError(f"{name} predicts other parameters than this console ({key}, {difference})")
