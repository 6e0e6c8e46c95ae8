"""Where tensors go: CUDA when a GPU is present, the CPU otherwise."""
import os

import torch


def pick_device() -> torch.device:
    """CUDA when available unless MIXREF_DEVICE says otherwise (``cpu``, ``cuda``, ``cuda:1``)."""
    requested = os.environ.get("MIXREF_DEVICE")
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
