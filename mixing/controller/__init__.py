"""The controller: a network that reads the tracks and a reference mix and predicts console parameters.

See :mod:`mixing.controller.model` for the architecture and input convention,
:mod:`mixing.controller.checkpoint` for the file format and
:mod:`mixing.controller.infer` for running it on one session.
"""
from mixing.controller.checkpoint import load_checkpoint, save_checkpoint
from mixing.controller.infer import norm_to_mix_params, predict_params
from mixing.controller.model import (
    REFERENCE_INPUT_LUFS,
    Controller,
    collate_sessions,
    default_config,
    pack_session,
    tiny_config,
)

__all__ = [
    "REFERENCE_INPUT_LUFS",
    "Controller",
    "collate_sessions",
    "default_config",
    "load_checkpoint",
    "norm_to_mix_params",
    "pack_session",
    "predict_params",
    "save_checkpoint",
    "tiny_config",
]
