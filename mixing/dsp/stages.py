"""The stages of the mixing console, built from the schema in ``mixing.params``.

Track strip: gain -> 6-band EQ -> compressor -> pan. The strips are summed to
stereo; the master bus runs 6-band EQ -> compressor -> expander -> match EQ
and multiband width -> stereo width -> balance, then the engines of ``mixing.dsp.console`` add the
loudness target and (in full renders) the true-peak ceiling. Inputs are stems
already trimmed to ``TRACK_INPUT_LUFS``
(``mixing.loudness.trim_tracks_to_input_level``), so ``gain_db = 0`` on every
track is the equal-loudness mix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

from mixing.dsp.compressor import compressor
from mixing.dsp.eq import parametric_eq, parametric_eq_iir
from mixing.dsp.expander import expander
from mixing.dsp.match_eq import channel_gains_db, match_eq
from mixing.dsp.pan import pan, stereo_width
from mixing.params import BAND_WIDTH_NAMES, MATCH_EQ_GAIN_NAMES, MATCH_EQ_LR_NAMES, TRACK_PARAMS, ParamSpec

_COMPRESSOR_SUFFIXES = ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db")


def db_to_amplitude(gain_db: torch.Tensor) -> torch.Tensor:
    """10^(gain_db / 20), same shape."""
    return torch.pow(10.0, gain_db / 20.0)


def compress(x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """The compressor with the settings ``{prefix}comp_*`` of ``params`` (tensors (batch,)) on x (batch, channels,
    samples); returns the same shape."""
    return compressor(x, sample_rate, *(params[f"{prefix}comp_{suffix}"] for suffix in _COMPRESSOR_SUFFIXES))


def _equalize(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], prefix: str, exact_iir: bool
) -> torch.Tensor:
    return (parametric_eq_iir if exact_iir else parametric_eq)(x, sample_rate, params, prefix)


def strip_before_pan(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], exact_iir: bool = False
) -> torch.Tensor:
    """Gain -> EQ -> compressor for ``x`` of shape (tracks, channels, samples); returns the same shape.

    ``params`` as for :func:`track_strip` (``pan_pct`` is not read).
    """
    return compress(strip_before_compressor(x, sample_rate, params, exact_iir), sample_rate, params, "")


def strip_before_compressor(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], exact_iir: bool = False
) -> torch.Tensor:
    """Gain -> EQ, what a strip's compressor hears, for ``x`` (tracks, channels, samples); the same shape."""
    gain = db_to_amplitude(torch.as_tensor(params["gain_db"], dtype=x.dtype, device=x.device)).reshape(-1, 1, 1)
    return _equalize(x * gain, sample_rate, params, "", exact_iir)


def strips_before_pan(
    tracks: Sequence[torch.Tensor], rows: Sequence[Mapping[str, float]], sample_rate: int, exact_iir: bool = False,
    *, batch_tracks: int = 2,
) -> Iterator[tuple[int, torch.Tensor]]:
    """:func:`strip_before_pan` for each of ``tracks`` (each (channels, samples), on one device) with its row of
    ``rows`` (TRACK_PARAMS in units): yields ``(position, processed (channels, samples))`` for every position,
    in the order processed.

    Up to ``batch_tracks`` tracks with the same channel count go through as one batch: the compiled EQ and
    compressor run batch items on separate cores, where one track alone keeps the compressor on one core.
    """
    pending = list(range(len(tracks)))
    while pending:
        shape = tracks[pending[0]].shape
        group = [position for position in pending if tracks[position].shape == shape][:batch_tracks]
        pending = [position for position in pending if position not in group]
        batch = torch.stack([tracks[position] for position in group])
        params = param_columns([rows[position] for position in group], TRACK_PARAMS, batch.device)
        processed = strip_before_pan(batch, sample_rate, params, exact_iir)
        del batch  # the stacked copy of the input: not held while the outputs are copied
        for position, item in zip(group, processed.unbind(0), strict=True):
            # Its own storage: a caller keeping one track's audio must not keep the whole batch alive.
            yield position, item.clone()


def track_strip(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], exact_iir: bool = False
) -> torch.Tensor:
    """Gain -> EQ -> compressor -> pan for ``x`` of shape (tracks, channels, samples); returns (tracks, 2, samples).

    All tracks in one call share the channel count (1 or 2). ``params`` maps the
    TRACK_PARAMS names to tensors of shape (tracks,) in units. ``exact_iir``
    chooses the IIR EQ (CPU, no gradients) over the frequency-domain one.
    """
    return pan(strip_before_pan(x, sample_rate, params, exact_iir), sample_rate, params["pan_pct"])


def master_bus(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], exact_iir: bool = False
) -> torch.Tensor:
    """EQ -> compressor -> expander -> match EQ and multiband width -> stereo width -> balance for the mix ``x``
    of shape (batch, 2, samples); returns the same shape.

    ``params`` maps the master EQ, compressor, expander, match EQ, width and balance
    names to tensors of shape (batch,). Loudness and ceiling follow
    separately, as the engines differ there.
    """
    return master_bus_after_dynamics(master_dynamics(x, sample_rate, params, exact_iir), sample_rate, params)


def master_dynamics(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], exact_iir: bool = False
) -> torch.Tensor:
    """The first stages of :func:`master_bus`, EQ -> compressor -> expander, for ``x`` (batch, 2, samples)."""
    if x.dim() != 3 or x.shape[1] != 2:
        raise ValueError(f"x: expected shape (batch, 2, samples), got {tuple(x.shape)}")
    compressed = compress(_equalize(x, sample_rate, params, "master_", exact_iir), sample_rate, params, "master_")
    return expander(compressed, sample_rate, params["master_expander_threshold_db"], params["master_expander_ratio"])


def master_bus_after_dynamics(
    x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor], spectrum: torch.Tensor | None = None
) -> torch.Tensor:
    """The last stages of :func:`master_bus`, match EQ and multiband width -> stereo width -> balance, for ``x``
    (batch, 2, samples), the output of :func:`master_dynamics`; ``spectrum``: its
    ``mixing.dsp.match_eq.match_eq_spectrum`` if known."""
    gains_db = channel_gains_db(torch.stack([params[name] for name in MATCH_EQ_GAIN_NAMES], dim=-1),
                                torch.stack([params[name] for name in MATCH_EQ_LR_NAMES], dim=-1))
    matched = match_eq(x, sample_rate, gains_db, spectrum=spectrum,
                       band_width_pct=torch.stack([params[name] for name in BAND_WIDTH_NAMES], dim=-1))
    widened = stereo_width(matched, sample_rate, params["master_width_pct"])
    # A stereo signal through the pan stage is a balance control (``mixing.dsp.pan``).
    return pan(widened, sample_rate, params["master_balance_pct"])


def param_columns(
    rows: Sequence[Mapping[str, float]], specs: Sequence[ParamSpec], device: torch.device
) -> dict[str, torch.Tensor]:
    """Parameters in units from one dict per item into tensors of shape (items,)."""
    return {
        spec.name: torch.tensor([float(row[spec.name]) for row in rows], dtype=torch.float32, device=device)
        for spec in specs
    }
