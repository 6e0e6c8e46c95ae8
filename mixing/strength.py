"""Match strength: how closely a mix follows the reference, one slider per dimension.

The automatic mix ends at the *full match* (every parameter set toward the reference). Its *neutral*
counterpart is the reference-free expert start (:meth:`mixing.session.MixSession.neutral_params`): the
same tracks balanced by loudness and role, at the streaming loudness. A strength in [0, 1] per
dimension moves that dimension's parameters from neutral (0) to the full match (1), each on its
schema scale (linear in units, geometric for ``scale="log"`` parameters such as frequencies, Q,
ratios and times), so 0 gives the neutral parameters and 1 the full match exactly.

:data:`DIMENSION_OF_PARAM` names each parameter's dimension, once for every parameter of the schema.
Parameters of no dimension (the ceiling: the user's, not the reference's) keep the full match's value.
``pan_pct`` is the one parameter split between two dimensions: the tracks' pans are their mean (the
mix's lean, which a lopsided reference copies) plus each track's offset from it (the spread); the
lean follows ``balance`` and the spread ``width``.
"""
from __future__ import annotations

from collections.abc import Mapping

from mixing.params import MASTER_SPECS, TRACK_SPECS, MixParams, ParamSpec

DIMENSIONS = ("tone", "dynamics", "width", "balance", "loudness")
PAN = "pan_pct"


def _dimension(name: str, spec: ParamSpec) -> str | None:
    if name == PAN:
        return "width"  # its spread; its mean lean follows "balance" (see the module docstring)
    if spec.group in ("eq", "gain", "master eq", "master match eq"):
        # Track levels belong to tone: the reference balance sets them by explaining its spectrum.
        return "tone"
    if spec.group == "master match eq lr":
        return "balance"  # the per-band difference between the channels is a lean by frequency
    if spec.group in ("compressor", "master compressor", "master expander"):
        return "dynamics"
    if spec.group == "master band width":
        return "width"
    if spec.group in ("reverb", "master reverb", "neural tone"):
        return None  # matching never sets these: the mix's own setting stays at every strength
    return {"master_width_pct": "width", "master_balance_pct": "balance",
            "master_loudness_lufs": "loudness", "master_ceiling_dbtp": None,
            "master_limiter_drive_db": "dynamics"}[name]


DIMENSION_OF_PARAM: dict[str, str | None] = {
    name: _dimension(name, spec) for name, spec in (*TRACK_SPECS.items(), *MASTER_SPECS.items())
}


def check_strengths(strengths: Mapping[str, float]) -> dict[str, float]:
    """Every dimension's strength as a float in [0, 1]; raises ValueError naming the first bad one."""
    unknown = sorted(set(strengths) - set(DIMENSIONS))
    if unknown:
        raise ValueError(f"unknown match dimension {unknown[0]!r}; choose from {', '.join(DIMENSIONS)}")
    checked = {}
    for dimension in DIMENSIONS:
        value = strengths.get(dimension, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"the {dimension} strength must be a number from 0 to 1, got {value!r}")
        checked[dimension] = float(value)
    return checked


def _between(spec: ParamSpec, neutral: float, full: float, strength: float) -> float:
    if strength == 0.0:
        return neutral
    if strength == 1.0:
        return full
    start, end = spec.normalize(neutral), spec.normalize(full)
    return spec.clamp(spec.denormalize(start + strength * (end - start)))


def _values(values: Mapping[str, float], neutral: Mapping[str, float], specs: Mapping[str, ParamSpec],
            strengths: Mapping[str, float]) -> dict[str, float]:
    result = {}
    for name, full in values.items():
        dimension = DIMENSION_OF_PARAM[name]
        result[name] = full if dimension is None else _between(specs[name], neutral[name], full,
                                                               strengths[dimension])
    return result


def apply_strength(neutral: MixParams, full: MixParams, strengths: Mapping[str, float]) -> MixParams:
    """The parameters ``strengths`` (dimension -> [0, 1], missing ones 1) of the way from ``neutral`` to
    ``full``, two mixes of the same tracks. Raises ValueError for another number of tracks or a bad strength."""
    strengths = check_strengths(strengths)
    if len(neutral.tracks) != len(full.tracks):
        raise ValueError(f"the neutral mix has {len(neutral.tracks)} tracks, the full match {len(full.tracks)}")
    tracks = [_values(values, start, TRACK_SPECS, strengths) for values, start in zip(full.tracks, neutral.tracks,
                                                                                       strict=True)]
    if tracks and strengths["balance"] != strengths["width"]:
        # Equal strengths move each pan straight from neutral to full (done above); else lean and spread apart.
        lean = {which: sum(values[PAN] for values in mix.tracks) / len(mix.tracks)
                for which, mix in (("neutral", neutral), ("full", full))}
        moved_lean = lean["neutral"] + strengths["balance"] * (lean["full"] - lean["neutral"])
        for values, start, end in zip(tracks, neutral.tracks, full.tracks, strict=True):
            spread = ((1.0 - strengths["width"]) * (start[PAN] - lean["neutral"])
                      + strengths["width"] * (end[PAN] - lean["full"]))
            values[PAN] = TRACK_SPECS[PAN].clamp(moved_lean + spread)
    return MixParams(tracks, _values(full.master, neutral.master, MASTER_SPECS, strengths))
