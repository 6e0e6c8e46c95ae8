"""Mix advice: what to change, track by track, to move a mix toward a target, and why.

:func:`advise` compares two states of the same song in one :class:`~mixing.session.MixSession`: the user's
``current`` parameters and a ``target`` (the automatic mix's, or a version the user prefers). It reads:

* each track's level in the mix (RMS after its strip and pan, :meth:`IncrementalRenderer.track_levels`)
  under both, and its bark-band levels (the AF loss's bands, :mod:`mixing.features`) after the gain moves;
* masking: a lead (vocal, lead or bass by :func:`mixing.expert.profile_track`; else the loudest track) is
  covered in a band where it sits (within :data:`SITS_WITHIN_DB` of its strongest band) by another track
  whose level there is no more than :data:`MASKING_MARGIN_DB` below it. Panning is left out (both
  tracks' strip outputs are compared as they enter the pan);
* the mix against the target's mix, after the track moves: tone per bark band at matched loudness,
  stereo width below 150 Hz, 150 Hz - 4 kHz and above 4 kHz, crest factor and loudness
  (:func:`mixing.analysis.measure`).

Suggestions, in this order, each ranked by its effect computed, not guessed:

1. ``gain``: a track whose level is :data:`GAIN_MIN_DB` or more off the target's. The fader move is solved
   through the renderer (compressors make level != gain) by secant steps; effect: the level error removed, dB.
2. ``masking``: a cut on the least used peaking band of the masker at the centre of the covered band where the
   lead is strongest, deep enough to bring it :data:`MASKING_MARGIN_DB` under the lead there (none when that
   takes more than :data:`MAX_CUT_DB`: then the lead's level is the problem); effect: the masker's drop in
   that band, dB, from the EQ's response on its measured spectrum. At most :data:`MAX_MASKING` of them.
3. ``tone``, ``width``, ``dynamics``, ``loudness``: master-bus changes (match EQ gains, width, the target's
   compressor and expander, loudness); effect: the AF loss against the target's mix removed, measured by
   rendering the mix with the change (the paper-convention AF loss at matched loudness). Width, then
   dynamics, then tone are each read and measured after the changes kept before them (a wider mix also reads
   brighter in each channel); only changes that lower the loss are kept. Tone moves each match EQ band by its
   own gap; the bands overlap, so a run of them can overshoot, which its measured effect shows.

Every suggestion carries :class:`Change` rows (track index or None for the master, a parameter of
:mod:`mixing.params`, the new value in its unit, clamped to its range), so that "apply" can move sliders.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from mixing import analysis, features, spectra
from mixing.dsp.eq import eq_response
from mixing.expert import profile_track
from mixing.losses import AudioFeatureLoss
from mixing.loudness import integrated_loudness_lufs
from mixing.params import EQ_BANDS, MASTER_SPECS, MATCH_EQ_GAIN_NAMES, TRACK_SPECS, MixParams

GAIN_MIN_DB = 1.0
GAIN_TOLERANCE_DB = 0.05
GAIN_SOLVE_STEPS = 6
SITS_WITHIN_DB = 10.0
MASKING_MARGIN_DB = 3.0
MAX_CUT_DB = 12.0
MAX_MASKING = 3
LEAD_ROLES = ("vocal", "lead", "bass")
TONE_MIN_DB = 1.5
WIDTH_MIN_DB = analysis.WIDTH_TOLERANCE_DB
CREST_MIN_DB = analysis.CREST_TOLERANCE_DB
LOUDNESS_MIN_LU = analysis.LOUDNESS_TOLERANCE_LU
# Master parameters that a dynamics suggestion copies from the target.
DYNAMICS_PARAMS = tuple(name for name in MASTER_SPECS if name.startswith(("master_comp_", "master_expander_")))
_REGIONS = (("low", f"below {analysis.LOW_MAX_HZ:.0f} Hz"),
            ("mid", f"between {analysis.LOW_MAX_HZ:.0f} Hz and {analysis.HIGH_MIN_HZ / 1000:.0f} kHz"),
            ("high", f"above {analysis.HIGH_MIN_HZ / 1000:.0f} kHz"))


@dataclass(frozen=True)
class Change:
    """One slider move: ``track`` index (None: the master bus), a schema parameter, its new value in its unit."""

    track: int | None
    param: str
    value: float


@dataclass(frozen=True)
class Suggestion:
    """One piece of advice: ``text`` says what to do, ``why`` the measured figures behind it; ``changes`` make it.

    ``kind``: gain, masking, tone, width, dynamics or loudness. ``effect`` in ``effect_unit``: "dB" (level error
    removed, or the masker's drop in the band) or "AF loss" (removed against the target's mix).
    """

    kind: str
    text: str
    why: str
    changes: tuple[Change, ...]
    effect: float
    effect_unit: str
    track: int | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "changes": [asdict(change) for change in self.changes]}


@dataclass(frozen=True)
class Masking:
    """``masker`` covers ``masked`` (track indices) in bark bands ``bands``; in ``band``, where the masked track is
    strongest of them, the masker stands ``excess_db`` above the masked track's level less the margin."""

    masker: int
    masked: int
    bands: tuple[int, ...]
    band: int
    excess_db: float


@dataclass
class Advice:
    """What :func:`advise` found. ``levels_db`` and ``target_levels_db``: (tracks,) levels in the mix;
    ``band_db``: (tracks, bands) each track's bark-band levels after the gain suggestions, dB;
    ``band_centres_hz``: (bands,); ``mix``: the mix-level differences (after the track moves) to the target's mix."""

    suggestions: list[Suggestion]
    levels_db: list[float]
    target_levels_db: list[float]
    band_db: list[list[float]]
    band_centres_hz: list[float]
    masking: list[Masking]
    mix: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready (docs/API.md, Advice)."""
        return {
            "suggestions": [suggestion.to_dict() for suggestion in self.suggestions],
            "levels_db": [round(level, 2) for level in self.levels_db],
            "target_levels_db": [round(level, 2) for level in self.target_levels_db],
            "band_centres_hz": [round(f, 1) for f in self.band_centres_hz],
            "band_db": [[round(value, 1) for value in row] for row in self.band_db],
            "masking": [asdict(found) for found in self.masking],
            "mix": self.mix,
        }


def apply(params: MixParams, changes: Sequence[Change]) -> MixParams:
    """A copy of ``params`` with ``changes`` made (values clamped to the schema's ranges)."""
    moved = copy.deepcopy(params)
    for change in changes:
        if change.track is None:
            moved.master[change.param] = MASTER_SPECS[change.param].clamp(change.value)
        else:
            moved.tracks[change.track][change.param] = TRACK_SPECS[change.param].clamp(change.value)
    return moved


def solve_gains_db(renderer, params: MixParams, target_levels_db: Sequence[float], tracks: Sequence[int]) -> \
        tuple[list[float], list[float]]:
    """The fader of each of ``tracks`` (indices) that puts its level in the mix at ``target_levels_db[track]``.

    Secant steps through ``renderer.track_levels`` (a first step of slope 1: without a compressor, level follows
    gain dB for dB), up to :data:`GAIN_SOLVE_STEPS`, until within :data:`GAIN_TOLERANCE_DB`; gains stay in the
    schema's range. Returns every track's gain_db and level_db (others as in ``params``).
    """
    spec = TRACK_SPECS["gain_db"]
    trial = copy.deepcopy(params)
    levels = renderer.track_levels(trial)
    previous: dict[int, tuple[float, float]] = {}
    for _ in range(GAIN_SOLVE_STEPS):
        moving = [index for index in tracks if abs(levels[index] - target_levels_db[index]) > GAIN_TOLERANCE_DB]
        if not moving:
            break
        for index in moving:
            gain, level = trial.tracks[index]["gain_db"], levels[index]
            slope = 1.0
            if index in previous and abs(gain - previous[index][0]) > 1e-6:
                slope = (level - previous[index][1]) / (gain - previous[index][0])
                slope = min(max(slope, 0.05), 1.5)  # a compressor flattens the curve; it never inverts it
            previous[index] = (gain, level)
            trial.tracks[index]["gain_db"] = spec.clamp(gain + (target_levels_db[index] - level) / slope)
        levels = renderer.track_levels(trial)
    return [values["gain_db"] for values in trial.tracks], list(levels)


def track_spectra(strips: Sequence[torch.Tensor], sample_rate: int) -> torch.Tensor:
    """Mean STFT magnitude of each strip output (channels, samples), mean over channels, over the windows
    :func:`mixing.analysis.spectrum_windows` picks: (tracks, bins)."""
    return torch.stack([_track_spectrum(audio, sample_rate) for audio in strips])


def _track_spectrum(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    windows = analysis.spectrum_windows(audio.detach().cpu().float(), sample_rate)
    return features.mean_magnitude_spectrum(windows).mean(dim=(0, 1))


@dataclass
class AdviceMemo:
    """What :func:`advise` measured that its next call on the same session can reuse, so that advice after one
    fader move measures one track, not all: each strip output's spectrum (bins,) and role by track, name and
    strip settings (``IncrementalRenderer.strip_settings``), and the readings of the last target's mix. Holds
    only what the last call used."""

    spectra: dict = field(default_factory=dict)
    roles: dict = field(default_factory=dict)
    target_key: str | None = None
    target: dict = field(default_factory=dict)


def _strip_readings(renderer, params: MixParams, names: Sequence[str], sample_rate: int, memo: AdviceMemo,
                    *, with_roles: bool) -> tuple[torch.Tensor, list[str] | None]:
    """The spectra (tracks, bins) of the strip outputs under ``params`` and, ``with_roles``, their roles
    (:func:`mixing.expert.profile_track`), measuring only what ``memo`` lacks."""
    strips = renderer.strip_outputs(params)
    keys = [(index, name, settings) for index, (name, settings)
            in enumerate(zip(names, renderer.strip_settings(params), strict=True))]

    def remembered(kept: dict, measure) -> dict:
        # A strip output is read only on a miss: reading one the renderer let go would process it again.
        return {key: kept[key] if key in kept else measure(strips[key[0]], key[1]) for key in keys}

    memo.spectra = remembered(memo.spectra, lambda audio, _: _track_spectrum(audio, sample_rate))
    roles = None
    if with_roles:
        memo.roles = remembered(memo.roles, lambda audio, name: profile_track(audio.cpu(), sample_rate, name).role)
        roles = [memo.roles[key] for key in keys]
    return torch.stack([memo.spectra[key] for key in keys]), roles


def _target_readings(session, target: MixParams, memo: AdviceMemo) -> dict:
    """The target mix's track levels, loudness, :func:`mixing.analysis.measure`, region widths and paper-convention
    AF features, from ``memo`` when the target is the last call's."""
    key = repr((target.tracks, target.master))
    if memo.target_key != key:
        sample_rate = session.sample_rate
        audio = session.render(target)
        memo.target = {"levels": session.renderer.track_levels(target),
                       "lufs": integrated_loudness_lufs(audio, sample_rate),
                       "measured": analysis.measure(audio, sample_rate),
                       "widths": region_widths_db(audio, sample_rate)}
        with torch.no_grad():
            memo.target["features"] = AudioFeatureLoss(sample_rate, bark=features.PAPER_BARK).features(
                audio.unsqueeze(0))
        memo.target_key = key
    return memo.target


def band_levels_db(magnitude: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(tracks, bins) mean magnitudes -> (tracks, bands) bark-band levels in dB: 20 log10 of the band's weighted
    mean magnitude per bin, so that the wide upper bands, which sum more bins, do not read louder for it."""
    filterbank = features.bark_filterbank(sample_rate)
    return 20.0 * torch.log10(magnitude @ filterbank.T / filterbank.sum(dim=1) + 1e-12)


def find_masking(band_db: torch.Tensor, leads: Sequence[int]) -> list[Masking]:
    """Each (masker, lead) pair where the masker covers the lead: band_db (tracks, bands) in dB. Ordered by excess."""
    found = []
    for masked in leads:
        sits = band_db[masked] >= band_db[masked].max() - SITS_WITHIN_DB
        for masker in range(band_db.shape[0]):
            if masker == masked:
                continue
            excess = band_db[masker] - (band_db[masked] - MASKING_MARGIN_DB)
            covered = sits & (excess >= 0.0)
            if not bool(covered.any()):
                continue
            bands = tuple(int(b) for b in torch.nonzero(covered).flatten())
            # Where the lead is strongest of the covered bands: the part of it most worth uncovering.
            band = max(bands, key=lambda b: float(band_db[masked, b]))
            found.append(Masking(masker, masked, bands, band, float(excess[band])))
    return sorted(found, key=lambda m: -m.excess_db)


def _leads(roles: Sequence[str], levels_db: Sequence[float]) -> list[int]:
    leads = [index for index, role in enumerate(roles) if role in LEAD_ROLES]
    return leads or [max(range(len(levels_db)), key=lambda index: levels_db[index])]


def _hz(freq_hz: float) -> str:
    return f"{freq_hz / 1000:.1f} kHz" if freq_hz >= 1000 else f"{freq_hz:.0f} Hz"


def _cut(found: Masking, params: MixParams, magnitude: torch.Tensor, band_db: torch.Tensor, sample_rate: int,
         names: Sequence[str]) -> Suggestion | None:
    """The EQ cut on the masker that uncovers the lead in the found band, with its effect from the EQ's response."""
    centres_hz = features.bark_band_centres_hz(sample_rate)
    freq_hz = float(centres_hz[found.band])
    values = params.tracks[found.masker]
    free = [key for key, _, kind, fmin_hz, fmax_hz, _ in EQ_BANDS
            if kind == "peaking" and fmin_hz <= freq_hz <= fmax_hz]
    if not free:
        return None
    key = min(free, key=lambda k: abs(values[f"eq_{k}_gain_db"]))
    cut_db = round(found.excess_db * 2.0) / 2.0
    if not 0.5 <= cut_db <= MAX_CUT_DB:
        return None  # nothing to cut, or a lead too quiet for any cut to uncover: its level is the problem
    # A bell about one bark band wide: Q = centre / distance between neighbouring band centres.
    neighbours = centres_hz[max(found.band - 1, 0): found.band + 2]
    q = TRACK_SPECS[f"eq_{key}_q"].clamp(freq_hz / float((neighbours[-1] - neighbours[0]) / (len(neighbours) - 1)))
    changes = (Change(found.masker, f"eq_{key}_freq_hz", TRACK_SPECS[f"eq_{key}_freq_hz"].clamp(round(freq_hz))),
               Change(found.masker, f"eq_{key}_gain_db", TRACK_SPECS[f"eq_{key}_gain_db"].clamp(-cut_db)),
               Change(found.masker, f"eq_{key}_q", round(q, 2)))
    cut_values = apply(params, changes).tracks[found.masker]
    responses = [eq_response({name: torch.tensor([float(v[name])]) for name in v if name.startswith("eq_")},
                             sample_rate, features.N_FFT).abs()[0] for v in (values, cut_values)]
    after = magnitude[found.masker] * responses[1] / responses[0].clamp_min(1e-6)
    drop_db = float(band_db[found.masker, found.band]
                    - band_levels_db(after.unsqueeze(0), sample_rate)[0, found.band])
    low_hz, high_hz = (float(centres_hz[b]) for b in (min(found.bands), max(found.bands)))
    where = f"around {_hz(low_hz)}" if low_hz == high_hz else f"between {_hz(low_hz)} and {_hz(high_hz)}"
    masker, masked = names[found.masker], names[found.masked]
    level_gap_db = float(band_db[found.masker, found.band] - band_db[found.masked, found.band])
    return Suggestion(
        "masking", f"{masker} covers {masked} {where}: cut {masker} {cut_db:.1f} dB at {_hz(freq_hz)}.",
        f"At {_hz(freq_hz)} {masker} is {level_gap_db:+.1f} dB against {masked}, where {masked} has its strongest "
        f"bands; the cut lowers {masker} there by {drop_db:.1f} dB.",
        changes, round(drop_db, 2), "dB", found.masker)


def _matched(audio: torch.Tensor, loudness_lufs: float, sample_rate: int) -> torch.Tensor:
    """``audio`` (2, samples) scaled to ``loudness_lufs``."""
    measured = integrated_loudness_lufs(audio, sample_rate)
    return audio * 10.0 ** ((loudness_lufs - measured) / 20.0) if math.isfinite(measured) else audio


def _af_loss(audio: torch.Tensor, target: dict, sample_rate: int, *, matched: bool = True) -> float:
    """The paper-convention AF loss of ``audio`` (2, samples) against the target of :func:`_target_readings`,
    at its loudness when ``matched``."""
    audio = _matched(audio, target["lufs"], sample_rate) if matched else audio
    loss_fn = AudioFeatureLoss(sample_rate, bark=features.PAPER_BARK)
    with torch.no_grad():
        return float(loss_fn.compare(loss_fn.features(audio.unsqueeze(0)), target["features"])[0])


def region_widths_db(audio: torch.Tensor, sample_rate: int) -> dict[str, float]:
    """Side/mid power ratio in dB (floor :data:`mixing.analysis.WIDTH_FLOOR_DB`) of ``audio`` (2, samples) in
    the low, mid and high regions of the analysis' tone readings."""
    windows = analysis.spectrum_windows(audio.detach().cpu().float(), sample_rate).transpose(0, 1).reshape(2, -1)
    mid, side = (windows[0] + windows[1]) / 2.0, (windows[0] - windows[1]) / 2.0
    mid_spectrum, side_spectrum = (spectra.long_term_spectrum(signal, sample_rate) for signal in (mid, side))
    freqs_hz = mid_spectrum["freqs_hz"]
    masks = {"low": freqs_hz < analysis.LOW_MAX_HZ, "high": freqs_hz >= analysis.HIGH_MIN_HZ}
    masks["mid"] = ~masks["low"] & ~masks["high"]
    widths = {}
    for region, mask in masks.items():
        mid_power = float((10.0 ** (mid_spectrum["db"][mask] / 10.0)).sum())
        side_power = float((10.0 ** (side_spectrum["db"][mask] / 10.0)).sum())
        widths[region] = max(10.0 * math.log10(max(side_power, 1e-30) / max(mid_power, 1e-30)),
                             analysis.WIDTH_FLOOR_DB)
    return widths


Candidate = tuple[str, str, str, tuple[Change, ...]]  # kind, text, why, changes: before its effect is measured


def _width_candidates(params: MixParams, widths: dict, target_widths: dict) -> list[Candidate]:
    gaps_db = {region: widths[region] - target_widths[region] for region in widths}
    region, gap_db = max(gaps_db.items(), key=lambda item: abs(item[1]))
    if abs(gap_db) < WIDTH_MIN_DB:
        return []
    # Width scales the side signal: its power ratio to the mid moves by 20 log10 of the width's ratio.
    mean_gap_db = sum(gaps_db.values()) / len(gaps_db)
    width_pct = MASTER_SPECS["master_width_pct"].clamp(
        round(params.master["master_width_pct"] * 10.0 ** (-mean_gap_db / 20.0)))
    words = dict(_REGIONS)
    return [("width", f"The mix is {'wider' if gap_db > 0 else 'narrower'} than the target {words[region]}: "
             f"set the stereo width to {width_pct:.0f} %.",
             "Side/mid in dB, mix vs target: " + ", ".join(
                 f"{words[r]} {widths[r]:.1f} vs {target_widths[r]:.1f}" for r in widths) + ".",
             (Change(None, "master_width_pct", width_pct),))]


def _dynamics_candidates(params: MixParams, target: MixParams, mine: dict, theirs: dict) -> list[Candidate]:
    crest_gap_db = (float(mine["features"]["crest_factor_db"].mean())
                    - float(theirs["features"]["crest_factor_db"].mean()))
    differs = [name for name in DYNAMICS_PARAMS if params.master[name] != target.master[name]]
    if abs(crest_gap_db) < CREST_MIN_DB or not differs:
        return []
    return [("dynamics", f"The mix is {'more dynamic' if crest_gap_db > 0 else 'more compressed'} than the target: "
             "set the master compressor and expander as the target has them.",
             f"Crest factor {crest_gap_db:+.1f} dB against the target's.",
             tuple(Change(None, name, target.master[name]) for name in differs))]


def _tone_candidates(params: MixParams, mine: dict, theirs: dict, sample_rate: int) -> list[Candidate]:
    """One match EQ move per run of neighbouring bark bands off the target the same way by TONE_MIN_DB or more;
    each band moves by its own gap (the match EQ's bands are the AF loss's)."""
    centres_hz = features.bark_band_centres_hz(sample_rate)
    # Bark levels at matched loudness (both measured so): mean over channels, log magnitude -> dB.
    tone_db = [20.0 / math.log(10.0) * float(d) for d in
               (mine["features"]["bark_spectrum"][0] - theirs["features"]["bark_spectrum"][0]).mean(dim=0)]
    runs: list[list[int]] = []
    for band, gap_db in enumerate(tone_db):
        if abs(gap_db) < TONE_MIN_DB:
            continue
        if runs and runs[-1][-1] == band - 1 and (tone_db[runs[-1][-1]] > 0) == (gap_db > 0):
            runs[-1].append(band)
        else:
            runs.append([band])
    candidates = []
    for run in runs:
        mean_gap_db = sum(tone_db[b] for b in run) / len(run)
        low_hz, high_hz = float(centres_hz[run[0]]), float(centres_hz[run[-1]])
        where = f"around {_hz(low_hz)}" if len(run) == 1 else f"between {_hz(low_hz)} and {_hz(high_hz)}"
        changes = tuple(Change(None, MATCH_EQ_GAIN_NAMES[b], MASTER_SPECS[MATCH_EQ_GAIN_NAMES[b]].clamp(
            round(params.master[MATCH_EQ_GAIN_NAMES[b]] - tone_db[b], 1))) for b in run)
        candidates.append((
            "tone", f"The mix has {abs(mean_gap_db):.1f} dB {'more' if mean_gap_db > 0 else 'less'} {where} than "
            f"the target: {'cut' if mean_gap_db > 0 else 'raise'} the match EQ there by {abs(mean_gap_db):.1f} dB.",
            "Bark-band levels at matched loudness, mix minus target: "
            + ", ".join(f"{_hz(float(centres_hz[b]))} {tone_db[b]:+.1f} dB" for b in run) + ".", changes))
    return candidates


def advise(session, current: MixParams, target: MixParams, *, current_audio: torch.Tensor | None = None,
           track_names: Sequence[str] | None = None, leads: Sequence[int] | None = None,
           memo: AdviceMemo | None = None) -> Advice:
    """Advice that moves ``current`` toward ``target`` (both for the tracks of ``session``, a
    :class:`mixing.session.MixSession`; see the module docstring).

    ``current_audio``: the current mix (2, samples) when already rendered. ``track_names``: default the stems'
    names. ``leads``: the track indices whose masking counts (default: by role, see the module docstring).
    ``memo``: kept between calls on the same session (its tracks' audio unchanged) to measure only what changed.
    """
    memo = memo if memo is not None else AdviceMemo()
    tracks = len(session.stems.audio)
    if len(current.tracks) != tracks or len(target.tracks) != tracks:
        raise ValueError(f"expected parameters for {tracks} tracks, got {len(current.tracks)} and "
                         f"{len(target.tracks)}")
    names = list(track_names) if track_names is not None else list(session.stems.names)
    sample_rate, renderer = session.sample_rate, session.renderer
    target_read = _target_readings(session, target, memo)
    target_levels = target_read["levels"]
    if current_audio is None:
        current_audio = session.render(current)
    levels = renderer.track_levels(current)

    suggestions = []
    off = [index for index in range(tracks) if abs(levels[index] - target_levels[index]) >= GAIN_MIN_DB]
    gains, solved_levels = solve_gains_db(renderer, current, target_levels, off)
    for index in off:
        gap_db = levels[index] - target_levels[index]
        move_db = gains[index] - current.tracks[index]["gain_db"]
        removed_db = abs(gap_db) - abs(solved_levels[index] - target_levels[index])
        held = " (its compressor holds the level back)" if abs(move_db + gap_db) >= 0.5 else ""
        suggestions.append(Suggestion(
            "gain", f"{names[index]} is {abs(gap_db):.1f} dB {'louder' if gap_db > 0 else 'quieter'} than in the "
            f"target balance: {'lower' if move_db < 0 else 'raise'} it {abs(move_db):.1f} dB{held}.",
            f"Level in the mix {levels[index]:.1f} dB vs {target_levels[index]:.1f} dB in the target; "
            f"at {gains[index]:+.1f} dB gain it measures {solved_levels[index]:.1f} dB.",
            (Change(index, "gain_db", round(float(gains[index]), 2)),), round(removed_db, 2), "dB", index))
    suggestions.sort(key=lambda s: -s.effect)

    # Masking and the mix are read after the track moves, so that no advice makes up for a fader twice.
    moved = MixParams([dict(values, gain_db=gain) for values, gain in zip(current.tracks, gains, strict=True)],
                      dict(current.master))
    magnitude, roles = _strip_readings(renderer, moved, names, sample_rate, memo, with_roles=leads is None)
    band_db = band_levels_db(magnitude, sample_rate)
    lead_tracks = list(leads) if leads is not None else _leads(roles, solved_levels)
    masking = find_masking(band_db, lead_tracks)
    cuts = [cut for cut in (_cut(found, moved, magnitude, band_db, sample_rate, names) for found in masking)
            if cut is not None]
    # One cut per masker: the one with the largest effect.
    best_cuts: dict[int, Suggestion] = {}
    for cut in sorted(cuts, key=lambda s: -s.effect):
        best_cuts.setdefault(cut.track, cut)
    suggestions += list(best_cuts.values())[:MAX_MASKING]

    moved_audio = session.render(moved) if off else current_audio
    target_lufs, theirs, target_widths = target_read["lufs"], target_read["measured"], target_read["widths"]

    def measured(audio: torch.Tensor) -> dict:
        return analysis.measure(_matched(audio, target_lufs, sample_rate), sample_rate)

    # Width, then dynamics, then tone, each read after the moves before it: a wider mix also reads brighter in
    # each channel, and tone is what the others leave. Each stage's effect is measured from where the last left.
    state, state_audio = moved, moved_audio
    base_loss = loss_before = _af_loss(moved_audio, target_read, sample_rate)
    widths = region_widths_db(moved_audio, sample_rate)
    mine = moved_read = measured(moved_audio)
    # Lambdas: each stage reads ``state`` and ``mine`` as the stages before it left them.
    stages = (lambda: _width_candidates(state, widths, target_widths),
              lambda: _dynamics_candidates(state, target, mine, theirs),
              lambda: _tone_candidates(state, mine, theirs, sample_rate))
    mix_suggestions = []
    for stage in stages:
        tried = []
        for kind, text, why, changes in stage():
            audio = session.render(apply(state, changes))
            tried.append((_af_loss(audio, target_read, sample_rate), kind, text, why, changes, audio))
        kept = [row for row in tried if row[0] < loss_before]
        for loss, kind, text, why, changes, _ in kept:
            mix_suggestions.append(Suggestion(kind, text, why + f" AF loss against the target {loss_before:.4f} -> "
                                              f"{loss:.4f}.", changes, round(loss_before - loss, 5), "AF loss"))
        if len(kept) == 1 and stage is not stages[-1]:
            loss_before, state, state_audio = kept[0][0], apply(state, kept[0][4]), kept[0][5]
            mine = measured(state_audio)
    current_lufs = integrated_loudness_lufs(current_audio, sample_rate)
    loudness_gap_lu = current_lufs - target_lufs
    if abs(loudness_gap_lu) >= LOUDNESS_MIN_LU:
        value = MASTER_SPECS["master_loudness_lufs"].clamp(round(current.master["master_loudness_lufs"]
                                                                 - loudness_gap_lu, 1))
        changes = (Change(None, "master_loudness_lufs", value),)
        unmatched = _af_loss(moved_audio, target_read, sample_rate, matched=False)
        loss = _af_loss(session.render(apply(moved, changes)), target_read, sample_rate, matched=False)
        if loss < unmatched:
            mix_suggestions.append(Suggestion(
                "loudness", f"The mix is {abs(loudness_gap_lu):.1f} LU {'louder' if loudness_gap_lu > 0 else 'quieter'}"
                f" than the target: set its loudness to {value:.1f} LUFS.",
                f"{current_lufs:.1f} LUFS vs {target_lufs:.1f} LUFS; AF loss at these loudnesses {unmatched:.4f} -> "
                f"{loss:.4f}.", changes, round(unmatched - loss, 5), "AF loss"))
    suggestions += sorted(mix_suggestions, key=lambda s: -s.effect)
    mix = {
        "tone_db": {band: round(moved_read["tone_db"][band] - theirs["tone_db"][band], 2)
                    for band in moved_read["tone_db"]},
        "width_db": {region: round(widths[region] - target_widths[region], 2) for region in widths},
        "crest_factor_db": round(float(moved_read["features"]["crest_factor_db"].mean())
                                 - float(theirs["features"]["crest_factor_db"].mean()), 2),
        "loudness_lu": round(loudness_gap_lu, 2),
        "af_loss": round(base_loss, 5),
    }
    return Advice(suggestions, list(levels), list(target_levels), band_db.tolist(),
                  [float(f) for f in features.bark_band_centres_hz(sample_rate)], masking, mix)
