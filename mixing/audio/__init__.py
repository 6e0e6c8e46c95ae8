"""Audio in and out: loading and checking stems, saving mixes, unpacking ZIPs, naming tracks.

Audio is float32 ``(channels, samples)``, a session's stems at the session's rate; loaders
return torch tensors. Every rejected file raises
:class:`~mixing.errors.StemError` naming it; :func:`load_stems` gathers them
into one :class:`~mixing.errors.StemsRejected`.

Names are imported on first use: the decode worker (``python -m
mixing.audio.decode``) runs this file first and must not pay for importing torch.
"""
from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "load_audio": "io", "load_stems": "io", "validate_stem": "io", "save_audio": "io",
    "pad_to_longest": "io", "Stems": "io", "session_rate_hz": "io", "resample": "io",
    "StemInfo": "decode", "DECODE_TIMEOUT_S": "decode",
    "extract_stems_zip": "archive", "ExtractedStems": "archive", "SkippedEntry": "archive",
    "MAX_ZIP_ENTRIES": "archive", "MAX_ZIP_TOTAL_BYTES": "archive",
    "track_name_from_filename": "names", "track_names_from_filenames": "names", "dedupe_names": "names",
    "is_audio_filename": "names", "AUDIO_EXTENSIONS": "names",
    "check_track_count": "validate", "MAX_TRACKS": "validate", "MAX_DURATION_S": "validate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__():
    return __all__
