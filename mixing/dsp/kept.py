"""Audio kept between renders, bounded by bytes: when a new entry would pass the bound, the least recently used
entries go first.

:class:`~mixing.dsp.console.IncrementalRenderer` keeps each track's strip output here, so that a render that
changes one track does not re-process the others. A long session's outputs do not all fit (38 stereo tracks of
5:27 at 48 kHz are 4.4 GiB), so the store holds as many as ``max_bytes`` allows and the renderer re-processes an
evicted track when it needs that track's audio again (the same settings give the same samples).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable

import torch

# The environment variable that bounds the renderer's kept strip outputs, in bytes, and its default (1 GiB).
KEPT_STRIPS_MAX_BYTES_ENV = "MIXREF_KEPT_STRIPS_MAX_BYTES"
DEFAULT_KEPT_STRIPS_MAX_BYTES = 1 << 30


def kept_strips_max_bytes() -> int:
    """The bound of the renderer's kept strip outputs: ``MIXREF_KEPT_STRIPS_MAX_BYTES`` when set, else 1 GiB.
    Raises ValueError for a value that is not a whole number of bytes >= 0."""
    value = os.environ.get(KEPT_STRIPS_MAX_BYTES_ENV)
    if value is None or not value.strip():
        return DEFAULT_KEPT_STRIPS_MAX_BYTES
    try:
        max_bytes = int(value)
    except ValueError:
        raise ValueError(f"{KEPT_STRIPS_MAX_BYTES_ENV}={value!r}: expected a whole number of bytes") from None
    if max_bytes < 0:
        raise ValueError(f"{KEPT_STRIPS_MAX_BYTES_ENV}={value!r}: expected a number of bytes >= 0")
    return max_bytes


def _nbytes(audio: torch.Tensor) -> int:
    # What the tensor holds alive: its whole storage, which a view can exceed.
    return audio.untyped_storage().nbytes()


class BoundedAudioStore:
    """Tensors by key, at most ``max_bytes`` of them in all (counted by their storage), least recently used
    evicted first. The newest entry is always kept, even alone over the bound: its caller is about to use it.
    ``evictions`` counts the entries evicted so far."""

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"max_bytes: expected >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.evictions = 0
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> torch.Tensor | None:
        """The tensor kept under ``key``, now the most recently used; None when it is not kept."""
        audio = self._entries.get(key)
        if audio is not None:
            self._entries.move_to_end(key)
        return audio

    def put(self, key: Hashable, audio: torch.Tensor) -> None:
        """Keep ``audio`` under ``key`` (replacing what was there) as the most recently used entry, evicting
        the least recently used others while the store holds more than ``max_bytes``."""
        self.discard(key)
        self._entries[key] = audio
        self.nbytes += _nbytes(audio)
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self.nbytes -= _nbytes(evicted)
            self.evictions += 1

    def discard(self, key: Hashable) -> None:
        """Forget ``key``'s tensor, if kept."""
        audio = self._entries.pop(key, None)
        if audio is not None:
            self.nbytes -= _nbytes(audio)
