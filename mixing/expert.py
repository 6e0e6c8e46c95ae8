"""An expert-knowledge starting mix, for when no trained controller is present.

Mix engineers start from a few habits that hold across genres: balance the
tracks by loudness, keep the low end and the lead in the centre, spread the
rest across the stereo field, take some low end out of tracks that do not
need it, and glue the bus with gentle compression. This module turns those
habits into console parameters; fitting then moves them toward the reference.

Tracks carry no labels, so roles come from names when the user's file names
say something ("Kick", "Lead Vox") and from the spectrum otherwise.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mixing.features import power_spectrum
from mixing.params import MASTER_PARAMS, TRACK_PARAMS, MixParams

ROLE_PATTERNS = (
    ("kick", r"\b(kick|kik|bd|bassdrum)\b"),
    ("bass", r"\b(bass|sub|808)\b"),
    ("vocal", r"\b(vox|vocals?|voice|singer|sing|lead ?vox|vx)\b"),
    ("snare", r"\b(snare|sn|clap)\b"),
    ("cymbals", r"\b(hats?|hh|hihat|hi-hat|cymbals?|overheads?|oh|ride|crash)\b"),
    ("drums", r"\b(drums?|kit|perc|percussion|toms?|loop)\b"),
    ("lead", r"\b(lead|solo|melody)\b"),
)
CENTRED_ROLES = {"kick", "bass", "vocal", "snare", "lead", "drums"}
# Offsets from the equal-loudness balance, in dB: the lead sits on top, pads behind.
ROLE_GAIN_DB = {"vocal": 3.0, "lead": 2.0, "kick": 1.0, "bass": 1.0, "snare": 0.0, "drums": 0.0,
                "cymbals": -3.0, "other": -1.0}
# Pan positions handed out in turn to tracks that are not centred.
SPREAD_PCT = (-40.0, 40.0, -60.0, 60.0, -25.0, 25.0, -75.0, 75.0)


@dataclass(frozen=True)
class TrackProfile:
    """What the starting mix needs to know of one track."""

    role: str
    low_energy_ratio: float  # share of energy below 150 Hz
    centroid_hz: float


def profile_track(audio: torch.Tensor, sample_rate: int, name: str = "") -> TrackProfile:
    """Role and spectral summary of one stem (channels, samples)."""
    mono = audio.mean(dim=0)
    # One long FFT over at most 30 s is enough for a spectral summary.
    mono = mono[: 30 * sample_rate]
    power = power_spectrum(torch.fft.rfft(mono))
    freqs = torch.fft.rfftfreq(mono.shape[-1], 1 / sample_rate)
    total = power.sum().clamp_min(1e-20)
    low_ratio = float(power[freqs < 150].sum() / total)
    centroid = float((power * freqs).sum() / total)

    lowered = name.lower().replace("_", " ")
    role = next((role for role, pattern in ROLE_PATTERNS if re.search(pattern, lowered)), None)
    if role is None:
        if low_ratio > 0.6:
            role = "bass"
        elif centroid > 6000:
            role = "cymbals"
        else:
            role = "other"
    return TrackProfile(role, low_ratio, centroid)


def starting_params(
    tracks: Sequence[torch.Tensor], sample_rate: int, names: Sequence[str] | None = None
) -> MixParams:
    """Starting console parameters for trimmed stems (each (channels, samples))."""
    names = list(names) if names is not None else [""] * len(tracks)
    params = MixParams.default(len(tracks))
    spread = iter(SPREAD_PCT * (len(tracks) // len(SPREAD_PCT) + 1))
    for values, audio, name in zip(params.tracks, tracks, names, strict=True):
        profile = profile_track(audio, sample_rate, name)
        values["gain_db"] = ROLE_GAIN_DB.get(profile.role, ROLE_GAIN_DB["other"])
        stereo = audio.shape[0] == 2
        if profile.role not in CENTRED_ROLES and not stereo:
            values["pan_pct"] = next(spread)
        if profile.role not in ("kick", "bass") and profile.low_energy_ratio < 0.3:
            # Clear the low end for the kick and bass.
            values["eq_low_shelf_freq_hz"] = 120.0
            values["eq_low_shelf_gain_db"] = -4.0
        if profile.role in ("vocal", "bass", "lead"):
            values.update(comp_threshold_db=-30.0, comp_ratio=3.0, comp_attack_ms=10.0, comp_release_ms=120.0)
        else:
            values.update(comp_threshold_db=-28.0, comp_ratio=1.5, comp_attack_ms=20.0, comp_release_ms=150.0)
    params.master.update(
        master_comp_threshold_db=-18.0,
        master_comp_ratio=2.0,
        master_comp_attack_ms=30.0,
        master_comp_release_ms=200.0,
    )
    _check_in_range(params)
    return params


def _check_in_range(params: MixParams) -> None:
    specs = {spec.name: spec for spec in TRACK_PARAMS + MASTER_PARAMS}
    for values in [*params.tracks, params.master]:
        for name, value in values.items():
            spec = specs[name]
            if not spec.min <= value <= spec.max:
                raise ValueError(f"expert start sets {name} = {value} outside [{spec.min}, {spec.max}]")

