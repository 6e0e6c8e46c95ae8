"""Mix quality against references with known answers: AF loss, gain error, balance and wall time per method.

Methods: ``equal-loudness`` (the lowest anchor of Diff-MST, seed 002 section
3.3), ``controller``, ``fit`` and ``auto`` (:meth:`mixing.session.MixSession.mix`).
Sessions are generated with FluidSynth (:mod:`mixing.datagen`) into
``--cache-dir`` and reused by later runs with the same seed and sizes.

Ground truth. Session ``i`` gets hidden console parameters
``P*_i = random_plausible_params(tracks, Generator().manual_seed(seed + i))``,
with every track those settings bury more than 20 dB below the loudest raised
to 20 dB (:func:`mixing.train.lift_buried_tracks`: the methods' own balance
floor, which no mix made here crosses), and its ground-truth mix
``M_i = render_mix(trim(S_i), P*_i)`` (whole song, master loudness and ceiling
included), as in Diff-MST's training method 1.

Case (a), same song (method 1 of seed 002, section 3): the session and
``M_i`` are cut into halves at the middle sample. The methods mix the second
half of the stems ``T_B`` toward the first half of the mix ``M_rA``; their mix
is compared with the held-out second half ``M_rB``, which holds the same
music, so besides the AF loss we report
  * MRSTFT(mix, M_rB) (:func:`mixing.losses.mrstft_loss`), and
  * the per-track gain error. Each method trims its stems itself (on ``T_B``)
    while ``P*`` was drawn after a trim of the whole stems, so gains are
    compared as the total gain from the raw stem, ``trim_db + gain_db``.
    "balance" removes the mean difference over the tracks of the case
    first: the loudness stage makes a gain offset common to all tracks
    (nearly) inaudible, so only the balance can be recovered from a
    reference. "raw" keeps it. Equal-loudness has no parameters; its error
    is that of ``gain_db = 0`` on every track (the equal-loudness balance).
    Tracks silent in ``T_B`` have no meaningful gain and are left out, and
    a case with fewer than two audible tracks has no balance error.
  * the per-track level error: the same comparison (balance, median over
    tracks) of each track's level in the mix, its RMS after its strip and
    pan (``IncrementalRenderer.track_levels_db``) on ``T_B``, relative to the
    raw stem, under the method's parameters and under ``P*``. ``P*``'s EQ
    and compressor move a track's level by a median of 5-7 dB beyond its
    fader, so a method can put every track at its reference level with
    other EQ and compressor settings and still be several dB off in fader
    terms: the level error is the balance a listener hears.

Case (b), another song (method 2): the whole stems of session ``i`` are mixed
toward the whole ground-truth mix of session ``i + 1`` (modulo the number of
sessions). Only the AF loss applies (different music); it is computed over the
whole songs, not over the excerpts that :mod:`mixing.fit` optimizes, so a
method gains nothing from fitting the excerpts it picked.

Diff-MST's own protocol, for comparison with its tables (``--clip-pairs``):
its Table 1 scores 100 examples, each a 10 s section of one song's tracks
mixed toward a 10 s section of another song, rather than whole songs. For each
case (b), ``--clip-pairs`` pairs of ``CLIP_S`` windows are drawn (seeded, the
same for every method): the stems' window where their own ground-truth mix
has mean energy of at least 0.001 at -16 LUFS (the seed's section rule,
section 3.1), the reference's window likewise. Each method mixes the clip of
the stems toward the clip of the reference, as if they were the whole songs,
and is scored against that clip. It is reported beside the whole-song
figures, which stay the ones the targets are judged on.

The reference balance alone (``--parts balance``), on the cases (a): how far
each track's level is from P*'s (the level error above) at the expert start
and after :func:`mixing.balance.balance_to_reference` moves its faders and
pans, and again when the start is given P*'s own EQ and compressors, so that
only the faders and pans are unknown. The last figure is what the reference's
long-term spectra can tell about the balance when nothing else is wrong; no
fitting or matching runs.

Floor of case (a): the reference half ``M_rA`` itself, scored against
``M_rB`` like a method's mix. It is what a method scores when it matches
the reference it is given exactly; only recovering ``P*`` (and so the music
of the other half) goes below it. It is printed with the ratio it gives.

Every comparison is at matched loudness: the mix and the reference are both
normalized to ``COMPARE_LUFS`` (integrated, BS.1770) first, so no method wins
or loses by level alone. The AF loss is eq. 8 of seed 002
(:func:`mixing.losses.feature_metrics`) with the bark spectrum as Diff-MST's
code takes it (mid and side, 32768-point frames:
:data:`mixing.features.PAPER_BARK`); the mean over cases is reported per
case type and over all cases, with its ratio to equal-loudness (ratio of the
means, as the paper's tables give them). Beside it, the same loss with the
bark spectrum that fitting and matching optimise (left and right, 2048
points: :data:`mixing.features.FIT_BARK`), ``af_loss_fit_bark``, shows how
far their optimum carries over to the yardstick.

Wall time: a new session's ``mix`` end to end from stems in memory (trim, start,
fit, full render, measuring), per case; case (b) is the full-length session.
One untimed warm-up fit on 2 s runs first, so JIT compilation and lazy
imports are not charged to the first case.

Balance check: after the mix, each track's level is its RMS after its strip
and pan (``IncrementalRenderer.track_levels_db``, before the master bus).
A track more than ``BALANCE_LIMIT_DB`` below the loudest violates the rule
unless it already sat that low in the starting mix, taken as the expert start
(:func:`mixing.expert.starting_params`, where fit and auto without a
controller begin) for every method. Equal-loudness is measured as the console
at default settings (``gain_db = 0``), which is its balance.

Figures are printed; nothing is asserted about time. Usage:

    .venv/bin/python bench/quality.py                   # 6 cases per type, 8 stems x 180 s
    .venv/bin/python bench/quality.py --quick           # smoke run: 1 case, 3 stems x 30 s
    .venv/bin/python bench/quality.py --cases 1 --duration-s 60 --json var/bench/quality.json
    .venv/bin/python bench/quality.py --parts clips       # only Diff-MST's protocol, 2 clip pairs per case
    .venv/bin/python bench/quality.py --parts balance     # the reference balance alone, case (a)
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixing.audio import Stems, load_stems
from mixing.balance import balance_to_reference
from mixing.device import pick_device
from mixing.errors import CheckpointError
from mixing.excerpts import MIN_MEAN_ENERGY
from mixing.expert import starting_params
from mixing.features import FEATURE_NAMES, FIT_BARK
from mixing.fit import DEFAULT_TIME_BUDGET_S
from mixing.losses import feature_metrics, mrstft_loss
from mixing.loudness import integrated_loudness_lufs, normalize_to_lufs
from mixing.params import MixParams
from mixing.pipeline import AUTO_START, AUTO_STARTS, DEFAULT_CHECKPOINT, MixResult
from mixing.session import MixSession
from mixing.train import lift_buried_tracks, random_plausible_params

METHODS = ("equal-loudness", "controller", "fit", "auto")
CASE_TYPES = ("a", "b")
# Diff-MST normalizes its references to -16 (seed 002, section 3.1); both sides of a comparison go here.
COMPARE_LUFS = -16.0
BALANCE_LIMIT_DB = 25.0
CLIP_S = 10.0
NO_CHECKPOINT = "n/a (no checkpoint)"
# Sizes of a full run and of --quick; explicit flags override either.
FULL = {"cases": 6, "duration_s": 180.0, "stems": 8, "time_budget_s": DEFAULT_TIME_BUDGET_S, "iterations": 150,
        "clip_pairs": 2}
QUICK = {"cases": 1, "duration_s": 30.0, "stems": 3, "time_budget_s": 10.0, "iterations": 5, "clip_pairs": 1}
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / "var" / "bench" / "quality"


@dataclass
class GroundTruth:
    """A session's hidden mix: ``params`` (P*), the input trim of each whole stem, and ``mix`` (2, samples)."""

    params: MixParams
    trim_db: list[float]
    mix: torch.Tensor


@dataclass
class CaseResult:
    """One method on one case. ``status`` is "ok" or why it did not run; figures are None where they do not apply."""

    case_type: str
    session: int
    reference_session: int
    method: str
    status: str = "ok"
    ran: str = ""
    wall_s: float | None = None
    fit_iterations: int | None = None
    af_loss: float | None = None
    af_loss_fit_bark: float | None = None
    feature_mse: dict[str, float] = field(default_factory=dict)
    mrstft: float | None = None
    gain_error_balance_db: list[float] = field(default_factory=list)
    gain_error_raw_db: list[float] = field(default_factory=list)
    level_error_db: list[float] = field(default_factory=list)
    max_drop_db: float | None = None
    violations: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


@dataclass
class ClipResult:
    """One method on one pair of clips (Diff-MST's protocol): where the clips start, and the AF loss."""

    session: int
    reference_session: int
    method: str
    stems_start_s: float
    reference_start_s: float
    status: str = "ok"
    ran: str = ""
    wall_s: float | None = None
    af_loss: float | None = None
    af_loss_fit_bark: float | None = None


# The starts the balance part compares, in the order they are reported.
BALANCE_STARTS = {
    "expert": "expert start",
    "expert+balance": "expert start + reference balance",
    "hidden-strips": "P*'s EQ and compressors, expert faders and pans",
    "hidden-strips+balance": "P*'s EQ and compressors + reference balance",
}


@dataclass
class BalanceResult:
    """The balance part on one case (a): the level errors (dB, audible tracks) of each start in BALANCE_STARTS."""

    session: int
    level_error_db: dict[str, list[float]] = field(default_factory=dict)


def ground_truth(stems: Stems, seed: int) -> GroundTruth:
    """Draw P* from a generator seeded with ``seed`` and render the whole session with it."""
    session = MixSession(stems, device="cpu")
    params = lift_buried_tracks(random_plausible_params(len(stems.audio), torch.Generator().manual_seed(seed)),
                                session.renderer)
    return GroundTruth(params, session.trim_db, session.renderer.render(params))


def _at_compare_level(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """(2, samples) -> (1, 2, samples) at COMPARE_LUFS."""
    return normalize_to_lufs(audio.float(), sample_rate, COMPARE_LUFS)[0].unsqueeze(0)


def _truth_levels_db(half: Stems, truth: GroundTruth, device) -> list[float]:
    """Case (a): each track's level under P* on the stems' half, relative to the raw stem (dB)."""
    # P* applies to the stems as trimmed whole; T_B of those is T_B times the whole-stem trim.
    levels_db = MixSession(half, device=device, trim_db=truth.trim_db).renderer.track_levels(truth.params)
    return [level - t for level, t in zip(levels_db, truth.trim_db, strict=True)]


def _level_errors_db(levels_db: Sequence[float], trim_db: Sequence[float], truth_levels_db: Sequence[float],
                     audible: Sequence[bool]) -> list[float]:
    """Case (a): balance errors of the audible tracks' levels, each relative to its raw stem, against P*'s."""
    pairs = zip(levels_db, trim_db, truth_levels_db, audible, strict=True)
    return _balance_errors_db([level - t - truth_level for level, t, truth_level, keep in pairs if keep])


def _drops_db(levels_db: Sequence[float]) -> list[float]:
    """How far each track sits below the loudest, in dB."""
    return [max(levels_db) - level for level in levels_db]


def _balance_errors_db(differences: Sequence[float]) -> list[float]:
    """Absolute differences after removing their mean (an offset common to all tracks is not a balance)."""
    if len(differences) < 2:
        return []  # one track has no balance to get wrong
    offset = statistics.fmean(differences)
    return [abs(d - offset) for d in differences]


def _gain_errors_db(gains_db: Sequence[float], trim_db: Sequence[float], truth: GroundTruth,
                    audible: Sequence[bool]) -> tuple[list[float], list[float]]:
    """(balance, raw) absolute errors of the total gain from the raw stem, over the audible tracks."""
    differences = [g + t - (row["gain_db"] + t_true)
                   for g, t, row, t_true, keep in zip(gains_db, trim_db, truth.params.tracks, truth.trim_db, audible,
                                                      strict=True)
                   if keep]
    return _balance_errors_db(differences), [abs(d) for d in differences]


def clip_pairs(mix: torch.Tensor, reference: torch.Tensor, sample_rate: int, *, count: int,
               clip_s: float = CLIP_S, seed: int = 0) -> tuple[int, list[tuple[int, int]]]:
    """Diff-MST's evaluation sections: ``count`` (mix start, reference start) pairs of windows of ``clip_s``
    (or the shorter song's length), each side drawn among its windows on a 1 s grid with mean energy of at
    least MIN_MEAN_ENERGY at COMPARE_LUFS (all windows if none is that loud). Returns (window samples, pairs).

    mix, reference: (channels, samples); ``mix`` is the audio that decides the mix side's windows.
    """
    window = min(round(clip_s * sample_rate), mix.shape[-1], reference.shape[-1])
    generator = torch.Generator().manual_seed(seed)

    def draw(audio: torch.Tensor) -> list[int]:
        level = _at_compare_level(audio, sample_rate)[0]
        starts = list(range(0, audio.shape[-1] - window + 1, sample_rate))
        loud = [s for s in starts if float(level[:, s : s + window].pow(2).mean()) >= MIN_MEAN_ENERGY] or starts
        return [loud[int(i)] for i in torch.randint(len(loud), (count,), generator=generator)]

    return window, list(zip(draw(mix), draw(reference), strict=True))


def _split(stems: Stems, truth: GroundTruth) -> tuple[Stems, torch.Tensor, torch.Tensor]:
    """Case (a): the second half of the stems T_B, the reference's first half M_rA and held-out M_rB."""
    half = stems.audio[0].shape[-1] // 2
    second = Stems(list(stems.names), [a[:, half : 2 * half] for a in stems.audio], stems.sample_rate, [])
    return second, truth.mix[:, :half], truth.mix[:, half : 2 * half]


def run_quality(
    sessions: Sequence[Stems],
    *,
    cases: int,
    methods: Sequence[str] = METHODS,
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S,
    iterations: int = 150,
    seed: int = 0,
    device: torch.device | str | None = None,
    checkpoint: Path | torch.nn.Module | None = DEFAULT_CHECKPOINT,
    auto_start: str | None = None,
    log: Callable[[str], None] | None = None,
) -> list[CaseResult]:
    """Run ``cases`` cases of each type through every method; see the module docstring for the protocol.

    ``sessions``: at least two, each of stems (channels, samples) of one
    length; case ``i`` uses session ``i`` modulo their number. ``checkpoint``
    and ``auto_start`` are passed to ``MixSession.mix``. Returns one result per case type, case and
    method, in that order.
    """
    _check_run(sessions, cases, methods)
    device = torch.device(device) if device is not None else pick_device()
    log = log or (lambda line: None)
    truth_of = _truths(sessions, seed)
    unavailable: dict[str, str] = {}
    results = []
    for case_type in CASE_TYPES:
        for case in range(cases):
            index = case % len(sessions)
            if case_type == "a":
                ref_index = index
                stems, reference, target = _split(sessions[index], truth_of(index))
            else:
                ref_index = (index + 1) % len(sessions)
                stems, reference, target = sessions[index], truth_of(ref_index).mix, truth_of(ref_index).mix
            sample_rate = stems.sample_rate
            session = MixSession(stems, reference, device=device)
            tracks, trim_db, renderer = session.tracks, session.trim_db, session.renderer
            audible = [math.isfinite(integrated_loudness_lufs(a, sample_rate)) for a in stems.audio]
            start_drops_db = _drops_db(renderer.track_levels(starting_params(tracks, sample_rate, stems.names)))
            if case_type == "a":
                truth_levels_db = _truth_levels_db(stems, truth_of(index), device)
            target_level = _at_compare_level(target, sample_rate)
            for method in methods:
                result = CaseResult(case_type, index, ref_index, method)
                results.append(result)
                if method in unavailable:
                    result.status = unavailable[method]
                    continue
                mixed, result.wall_s, result.status = _mixed(stems, reference, method, unavailable,
                                                             checkpoint=checkpoint, auto_start=auto_start,
                                                             time_budget_s=time_budget_s,
                                                             iterations=iterations, seed=seed, device=device)
                if mixed is None:
                    log(f"[{case_type} {case + 1}/{cases}] {method}: {result.status}")
                    continue
                result.ran = mixed.method
                result.timings_s = mixed.timings_s
                result.fit_iterations = mixed.fit.iterations if mixed.fit is not None else None
                mix_level = _at_compare_level(mixed.audio, sample_rate)
                metrics = feature_metrics(mix_level, target_level, sample_rate)
                result.af_loss = metrics.pop("af_loss")
                result.af_loss_fit_bark = feature_metrics(mix_level, target_level, sample_rate,
                                                          bark=FIT_BARK)["af_loss"]
                result.feature_mse = metrics
                params = mixed.params if mixed.params is not None else MixParams.default(len(tracks))
                if case_type == "a":
                    with torch.no_grad():
                        result.mrstft = float(mrstft_loss()(_at_compare_level(mixed.audio, sample_rate), target_level))
                    mix_trim_db = mixed.trim_db or trim_db
                    result.gain_error_balance_db, result.gain_error_raw_db = _gain_errors_db(
                        [row["gain_db"] for row in params.tracks], mix_trim_db, truth_of(index), audible)
                levels_db = renderer.track_levels(params)
                if case_type == "a":
                    result.level_error_db = _level_errors_db(levels_db, trim_db, truth_levels_db, audible)
                drops_db = _drops_db(levels_db)
                result.max_drop_db = max(drops_db)
                result.violations = [name
                                     for name, drop, start in zip(stems.names, drops_db, start_drops_db, strict=True)
                                     if drop > BALANCE_LIMIT_DB and start <= BALANCE_LIMIT_DB]
                fitted = f", {result.fit_iterations} fit iterations" if result.fit_iterations is not None else ""
                log(f"[{case_type} {case + 1}/{cases}] {method} ({mixed.method}): AF {result.af_loss:.4g}, "
                    f"{result.wall_s:.1f} s{fitted}, max drop {result.max_drop_db:.1f} dB")
    return results


def _truths(sessions: Sequence[Stems], seed: int) -> Callable[[int], GroundTruth]:
    """``truth_of(index)``: session ``index``'s ground truth, rendered once however often it is asked for."""
    return functools.cache(lambda index: ground_truth(sessions[index], seed + index))


def _check_run(sessions: Sequence[Stems], cases: int, methods: Sequence[str]) -> None:
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; choose from {METHODS}")
    if len(sessions) < 2:
        raise ValueError(f"case (b) needs a reference from another session: got {len(sessions)} session(s), need 2")
    if cases < 1:
        raise ValueError(f"cases must be at least 1, got {cases}")


def _mixed(stems: Stems, reference: torch.Tensor, method: str, unavailable: dict[str, str], *, checkpoint,
           **options) -> tuple[MixResult | None, float | None, str]:
    """(mix, wall time, "ok") from a new session's ``mix``, or (None, None, why not) for a method without its
    checkpoint; ``unavailable`` remembers those, so later cases skip them. ``options``: ``device`` for the
    session, the rest for its ``mix``."""
    if method in unavailable:
        return None, None, unavailable[method]
    began = time.perf_counter()
    device = options.pop("device")
    try:
        # A session of its own, so that every method's wall time includes the trim and the renderer.
        mixed = MixSession(stems, reference, device=device).mix(method=method, checkpoint=checkpoint, **options)
    except CheckpointError as error:
        missing = checkpoint is None or (isinstance(checkpoint, Path) and not checkpoint.exists())
        unavailable[method] = NO_CHECKPOINT if missing else f"n/a ({error})"
        return None, None, unavailable[method]
    return mixed, time.perf_counter() - began, "ok"


def run_clips(
    sessions: Sequence[Stems],
    *,
    cases: int,
    pairs: int,
    methods: Sequence[str] = METHODS,
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S,
    iterations: int = 150,
    seed: int = 0,
    device: torch.device | str | None = None,
    checkpoint: Path | torch.nn.Module | None = DEFAULT_CHECKPOINT,
    auto_start: str | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ClipResult]:
    """Diff-MST's protocol (see the module docstring): ``pairs`` clip pairs per case (b), each mixed on its own.

    Returns one result per case, pair and method, in that order.
    """
    _check_run(sessions, cases, methods)
    device = torch.device(device) if device is not None else pick_device()
    log = log or (lambda line: None)
    truth_of = _truths(sessions, seed)
    unavailable: dict[str, str] = {}
    results = []
    for case in range(cases):
        index = case % len(sessions)
        ref_index = (index + 1) % len(sessions)
        stems, sample_rate = sessions[index], sessions[index].sample_rate
        reference = truth_of(ref_index).mix
        window, starts = clip_pairs(truth_of(index).mix, reference, sample_rate, count=pairs, seed=seed + index)
        for pair, (stems_start, ref_start) in enumerate(starts):
            clip = Stems(list(stems.names), [a[:, stems_start : stems_start + window] for a in stems.audio],
                         sample_rate, [])
            clip_reference = reference[:, ref_start : ref_start + window]
            target = _at_compare_level(clip_reference, sample_rate)
            for method in methods:
                result = ClipResult(index, ref_index, method, stems_start / sample_rate, ref_start / sample_rate)
                results.append(result)
                mixed, result.wall_s, result.status = _mixed(clip, clip_reference, method, unavailable,
                                                             checkpoint=checkpoint, auto_start=auto_start,
                                                             time_budget_s=time_budget_s,
                                                             iterations=iterations, seed=seed, device=device)
                if mixed is None:
                    continue
                result.ran = mixed.method
                mix_level = _at_compare_level(mixed.audio, sample_rate)
                result.af_loss = feature_metrics(mix_level, target, sample_rate)["af_loss"]
                result.af_loss_fit_bark = feature_metrics(mix_level, target, sample_rate, bark=FIT_BARK)["af_loss"]
                log(f"[clips {case + 1}/{cases}, pair {pair + 1}/{pairs}] {method}: AF {result.af_loss:.4g}, "
                    f"{result.wall_s:.1f} s")
    return results


def run_balance(sessions: Sequence[Stems], *, cases: int, seed: int = 0, device: torch.device | str | None = None,
                log: Callable[[str], None] | None = None) -> list[BalanceResult]:
    """The reference balance alone on ``cases`` cases (a) (see the module docstring): the level errors of the
    expert start and of the balance estimate from it, then the same with P*'s EQ and compressors given."""
    device = torch.device(device) if device is not None else pick_device()
    log = log or (lambda line: None)
    truth_of = _truths(sessions, seed)
    results = []
    for case in range(cases):
        index = case % len(sessions)
        truth = truth_of(index)
        stems, reference, _ = _split(sessions[index], truth)
        sample_rate = stems.sample_rate
        session = MixSession(stems, reference, device=device)
        tracks, trim_db = session.tracks, session.trim_db
        audible = [math.isfinite(integrated_loudness_lufs(a, sample_rate)) for a in stems.audio]
        truth_levels_db = _truth_levels_db(stems, truth, device)
        expert = starting_params(tracks, sample_rate, stems.names)
        hidden_strips = copy.deepcopy(expert)
        for row, hidden in zip(hidden_strips.tracks, truth.params.tracks, strict=True):
            row.update({name: value for name, value in hidden.items() if name not in ("gain_db", "pan_pct")})
        starts = {}
        for name, params in (("expert", expert), ("hidden-strips", hidden_strips)):
            starts[name] = params
            starts[f"{name}+balance"], _ = balance_to_reference(params, tracks, reference, sample_rate, device=device)
        result = BalanceResult(index, {name: _level_errors_db(session.renderer.track_levels(starts[name]), trim_db,
                                                               truth_levels_db, audible)
                                       for name in BALANCE_STARTS})
        results.append(result)
        log(f"[balance {case + 1}/{cases}] median level error, dB: "
            + ", ".join(f"{name} {_fmt(_median(errors), '.2f')}" for name, errors in result.level_error_db.items()))
    return results


def balance_lines(results: Sequence[BalanceResult]) -> list[str]:
    """The balance part's table: per start, the median level error over all tracks of all cases and per case."""
    lines = ["", "Reference balance alone, case (a): level error (the balance heard), median dB", "",
             "| Start | all tracks | per case |", "|---|---|---|"]
    for name, label in BALANCE_STARTS.items():
        pooled = [e for r in results for e in r.level_error_db[name]]
        lines.append(f"| {label} | {_fmt(_median(pooled), '.2f')} | "
                     + ", ".join(_fmt(_median(r.level_error_db[name]), '.2f') for r in results) + " |")
    return lines


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize_clips(results: Sequence[ClipResult]) -> dict[str, dict]:
    """Per method: mean AF loss over the clip pairs, its ratio to equal-loudness's, mean wall time."""
    summary: dict[str, dict] = {}
    for method in dict.fromkeys(r.method for r in results):
        done = [r for r in results if r.method == method and r.status == "ok"]
        summary[method] = ({"status": "ok", "af_loss_mean": _mean([r.af_loss for r in done]),
                            "af_loss_mean_fit_bark": _mean([r.af_loss_fit_bark for r in done]),
                            "wall_s_mean": _mean([r.wall_s for r in done])} if done
                           else {"status": next(r.status for r in results if r.method == method)})
    anchor = summary.get("equal-loudness", {})
    for figures in summary.values():
        if figures["status"] == "ok" and anchor.get("status") == "ok" and anchor["af_loss_mean"]:
            figures["ratio_to_equal_loudness"] = figures["af_loss_mean"] / anchor["af_loss_mean"]
            figures["ratio_to_equal_loudness_fit_bark"] = (figures["af_loss_mean_fit_bark"]
                                                           / anchor["af_loss_mean_fit_bark"])
    return summary


def same_song_floor(sessions: Sequence[Stems], *, cases: int, seed: int = 0) -> list[float]:
    """Per case (a): the AF loss of the reference half M_rA against the held-out half M_rB
    (see the module docstring)."""
    floors = []
    for case in range(cases):
        index = case % len(sessions)
        stems, reference, target = _split(sessions[index], ground_truth(sessions[index], seed + index))
        metrics = feature_metrics(_at_compare_level(reference, stems.sample_rate),
                                  _at_compare_level(target, stems.sample_rate), stems.sample_rate)
        floors.append(metrics["af_loss"])
    return floors


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(results: Sequence[CaseResult]) -> dict[str, dict]:
    """Per method: AF loss means (per case type and all), ratio to equal-loudness, errors, times, balance."""
    summary: dict[str, dict] = {}
    for method in dict.fromkeys(r.method for r in results):
        done = [r for r in results if r.method == method and r.status == "ok"]
        if not done:
            summary[method] = {"status": next(r.status for r in results if r.method == method)}
            continue
        of_type = {t: [r for r in done if r.case_type == t] for t in CASE_TYPES}
        balance = [e for r in of_type["a"] for e in r.gain_error_balance_db]
        raw = [e for r in of_type["a"] for e in r.gain_error_raw_db]
        level = [e for r in of_type["a"] for e in r.level_error_db]
        summary[method] = {
            "status": "ok",
            "ran": sorted({r.ran for r in done}),
            "fit_iterations_mean": _mean([r.fit_iterations for r in done if r.fit_iterations is not None]),
            "af_loss_mean": _mean([r.af_loss for r in done]),
            **{f"af_loss_mean_{t}": _mean([r.af_loss for r in of_type[t]]) for t in CASE_TYPES},
            "af_loss_mean_fit_bark": _mean([r.af_loss_fit_bark for r in done]),
            "feature_mse_mean": {name: _mean([r.feature_mse[name] for r in done]) for name in FEATURE_NAMES},
            "mrstft_mean_a": _mean([r.mrstft for r in of_type["a"]]),
            "gain_error_median_db": _median(balance),
            "gain_error_raw_median_db": _median(raw),
            "level_error_median_db": _median(level),
            **{f"wall_s_mean_{t}": _mean([r.wall_s for r in of_type[t]]) for t in CASE_TYPES},
            **{f"wall_s_max_{t}": max((r.wall_s for r in of_type[t]), default=None) for t in CASE_TYPES},
            "max_drop_db": max(r.max_drop_db for r in done),
            "violations": sum(len(r.violations) for r in done),
        }
    anchor = summary.get("equal-loudness", {})
    for figures in summary.values():
        if figures["status"] != "ok" or anchor.get("status") != "ok":
            continue
        for key in ("af_loss_mean", "af_loss_mean_a", "af_loss_mean_b", "af_loss_mean_fit_bark"):
            if figures[key] is not None and anchor[key]:
                figures[key.replace("af_loss_mean", "ratio_to_equal_loudness")] = figures[key] / anchor[key]
    return summary


def _fmt(value: float | None, spec: str = ".3g", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"1/{1 / value:.3g}" if 0 < value < 1 else f"{value:.3g}x"


def _ran(figures: dict) -> str:
    iterations = figures["fit_iterations_mean"]
    return ", ".join(figures["ran"]) + ("" if iterations is None else f" ({iterations:.0f} iterations)")


def format_report(summary: dict[str, dict], config: dict, floor_a: Sequence[float] = (),
                  clips: dict[str, dict] | None = None, balance: Sequence[BalanceResult] = ()) -> str:
    """The printed tables and the targets of the issue, as text; ``summary`` from :func:`summarize` (empty
    when the songs were not run), ``floor_a`` from :func:`same_song_floor`, ``clips`` from :func:`summarize_clips`,
    ``balance`` from :func:`run_balance`."""
    lines = [
        f"Quality: {config['cases']} case(s) per type, {config['stems']} stems x {config['duration_s']:g} s, "
        f"device {config['device']}, fit budget {config['time_budget_s']} s / {config['iterations']} iterations, "
        f"compared at {COMPARE_LUFS:g} LUFS",
    ]
    if summary:
        lines += _song_lines(summary, floor_a)
    if clips:
        lines += ["", f"Diff-MST's protocol (seed 002, Table 1): {config['clip_pairs']} pair(s) of {CLIP_S:g} s "
                      "clips per case (b), the stems' clip mixed toward the reference's clip:", "",
                  "| Method | AF, clips | / equal-loudness | AF, fitting's bark | / equal-loudness | Wall mean s |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {method} | {f['status']} | - | - | - | - |" if f["status"] != "ok" else
                  f"| {method} | {_fmt(f['af_loss_mean'])} | {_ratio(f.get('ratio_to_equal_loudness'))} "
                  f"| {_fmt(f['af_loss_mean_fit_bark'])} | {_ratio(f.get('ratio_to_equal_loudness_fit_bark'))} "
                  f"| {_fmt(f['wall_s_mean'], '.1f')} |" for method, f in clips.items()]
    if balance:
        lines += balance_lines(balance)
    checks = _target_checks(summary, config, clips or {})
    if checks:
        lines += ["", "Targets (informative; nothing is asserted):"]
        lines += [f"  {'met    ' if met else 'NOT met'}  {text}" for text, met in checks]
    return "\n".join(lines)


def _song_lines(summary: dict[str, dict], floor_a: Sequence[float]) -> list[str]:
    lines = [
        "",
        "| Method | Ran | AF (a) | AF (b) | AF all | / equal-loudness | Gain err (a), median dB: balance / raw "
        "| Level err (a), median dB | MRSTFT (a) | Wall (a) mean / max s | Wall (b) mean / max s | Max drop dB "
        "| 25 dB violations |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, f in summary.items():
        if f["status"] != "ok":
            lines.append(f"| {method} | {f['status']} |" + " - |" * 11)
            continue
        lines.append(
            f"| {method} | {_ran(f)} | {_fmt(f['af_loss_mean_a'])} | {_fmt(f['af_loss_mean_b'])} "
            f"| {_fmt(f['af_loss_mean'])} | {_ratio(f.get('ratio_to_equal_loudness'))} "
            f"| {_fmt(f['gain_error_median_db'], '.2f')} / {_fmt(f['gain_error_raw_median_db'], '.2f')} "
            f"| {_fmt(f['level_error_median_db'], '.2f')} | {_fmt(f['mrstft_mean_a'])} "
            f"| {_fmt(f['wall_s_mean_a'], '.1f')} / {_fmt(f['wall_s_max_a'], '.1f')} "
            f"| {_fmt(f['wall_s_mean_b'], '.1f')} / {_fmt(f['wall_s_max_b'], '.1f')} "
            f"| {_fmt(f['max_drop_db'], '.1f')} | {f['violations']} |"
        )
    anchor = summary.get("equal-loudness", {})
    if floor_a:
        floor = _mean(floor_a)
        ratio = floor / anchor["af_loss_mean_a"] if anchor.get("status") == "ok" else None
        lines += ["", f"Floor of (a), the reference half itself against the held-out half: AF {_fmt(floor)} "
                      f"({_ratio(ratio)} of equal-loudness on (a)); per case: "
                      + ", ".join(_fmt(value) for value in floor_a)]
    lines += ["", f"The same AF loss with fitting's bark spectrum ({FIT_BARK.name}), all cases: "
              + "; ".join(f"{method} {_fmt(f['af_loss_mean_fit_bark'])} "
                          f"({_ratio(f.get('ratio_to_equal_loudness_fit_bark'))})"
                          for method, f in summary.items() if f["status"] == "ok")]
    lines += ["", "Unweighted feature MSE, mean over all cases (the columns of seed 002, Table 1):", "",
              "| Method | " + " | ".join(FEATURE_NAMES) + " |", "|---|" + "---|" * len(FEATURE_NAMES)]
    for method, f in summary.items():
        if f["status"] == "ok":
            lines.append(f"| {method} | " + " | ".join(_fmt(f["feature_mse_mean"][n]) for n in FEATURE_NAMES) + " |")
    return lines


def _target_checks(summary: dict[str, dict], config: dict, clips: dict[str, dict]) -> list[tuple[str, bool]]:
    """(text, met) for each target of the issue that the figures at hand speak to."""
    checks = []
    auto = summary.get("auto", {})
    if auto.get("status") == "ok":
        ratio = auto.get("ratio_to_equal_loudness")
        checks += [
            (f"auto AF loss / equal-loudness = {_ratio(ratio)} (target at most 1/200)",
             ratio is not None and ratio <= 1 / 200),
            *((f"  of which case ({t}): {_ratio(auto.get(f'ratio_to_equal_loudness_{t}'))}",
               (auto.get(f"ratio_to_equal_loudness_{t}") or 1.0) <= 1 / 200) for t in CASE_TYPES),
        ]
    clip_ratio = clips.get("auto", {}).get("ratio_to_equal_loudness")
    if clip_ratio is not None:
        checks.append((f"  10 s clips, Diff-MST's protocol: {_ratio(clip_ratio)} (Diff-MST's Table 1: 1/201)",
                       clip_ratio <= 1 / 200))
    if auto.get("status") == "ok":
        gain = auto["gain_error_median_db"]
        level = auto["level_error_median_db"]
        wall = auto["wall_s_max_b"]
        wall_target_s = 10.0 if str(config["device"]).startswith("cuda") else 60.0
        checks += [
            (f"auto median gain error on (a) = {_fmt(gain, '.2f', ' dB')} (target under 2 dB)",
             gain is not None and gain < 2.0),
            (f"  its level error (the balance heard) = {_fmt(level, '.2f', ' dB')} (under 2 dB?)",
             level is not None and level < 2.0),
            (f"auto wall time, slowest case (b), {config['stems']} stems x {config['duration_s']:g} s = "
             f"{_fmt(wall, '.1f', ' s')} (target under {wall_target_s:g} s for 8 stems x 180 s on {config['device']})",
             wall is not None and wall < wall_target_s),
        ]
    if summary:
        violations = sum(f["violations"] for f in summary.values() if f["status"] == "ok")
        checks.append((f"balance: {violations} track(s) more than {BALANCE_LIMIT_DB:g} dB below the loudest that "
                       "were not that low in the starting mix", not violations))
    return checks


def warm_up(stems: Stems, device: torch.device) -> None:
    """One untimed fit on a 2 s excerpt, so that no case pays for JIT compilation and lazy imports."""
    excerpt = Stems(list(stems.names), [a[:, : 2 * stems.sample_rate] for a in stems.audio], stems.sample_rate, [])
    reference = torch.stack([excerpt.audio[0][0]] * 2)
    MixSession(excerpt, reference, device=device).mix(method="fit", checkpoint=None, iterations=1, time_budget_s=None)


def load_sessions(cache_dir: Path, count: int, *, seed: int, duration_s: float, num_stems: int) -> list[Stems]:
    """Generate (or reuse from ``cache_dir``) ``count`` sessions and load their stems."""
    from mixing.datagen.session import generate_sessions

    out_dir = Path(cache_dir) / f"{num_stems}x{duration_s:g}s-seed{seed}"

    def report(event: dict) -> None:
        state = "reused" if event["skipped"] else f"generated in {event['seconds']:.1f} s"
        print(f"session {event['done']}/{event['total']}: {event['session']} {state}", file=sys.stderr)

    paths = generate_sessions(out_dir, count, seed=seed, duration_s=duration_s,
                              num_stems_range=(num_stems, num_stems), progress=report)
    # The files are our own renders: decoding in-process is safe and faster than the isolated worker.
    return [load_stems(sorted(path.glob("*.wav")), isolate=False) for path in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, help=f"cases per case type (default {FULL['cases']})")
    parser.add_argument("--duration-s", type=float, help=f"session length (default {FULL['duration_s']:g})")
    parser.add_argument("--stems", type=int, help=f"stems per session (default {FULL['stems']})")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--time-budget-s", type=float, help=f"fit/auto time budget (default {FULL['time_budget_s']:g})")
    parser.add_argument("--iterations", type=int, help=f"fit/auto iterations at most (default {FULL['iterations']})")
    parser.add_argument("--clip-pairs", type=int,
                        help=f"clip pairs per case (b), Diff-MST's protocol; 0: none (default {FULL['clip_pairs']})")
    parser.add_argument("--parts", nargs="+", choices=("songs", "clips", "balance"), default=["songs", "clips"],
                        help="whole songs (cases a and b), Diff-MST's clips, the reference balance alone on (a)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sessions, P* and the fit")
    parser.add_argument("--quick", action="store_true",
                        help="smoke-run sizes: " + ", ".join(f"{k}={v:g}" for k, v in QUICK.items()))
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="generated sessions, reused")
    parser.add_argument("--device", help="cpu or cuda (default: mixing.device.pick_device)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help="controller checkpoint for the controller method and start (default: the shipped one)")
    parser.add_argument("--auto-start", choices=AUTO_STARTS, default=AUTO_START,
                        help=f"where auto starts (default {AUTO_START}, as mixing.pipeline.AUTO_START)")
    parser.add_argument("--json", type=Path, help="write the configuration, every case and the summary here")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    config = {key: getattr(args, key) if getattr(args, key) is not None else default for key, default in sizes.items()}
    device = torch.device(args.device) if args.device else pick_device()
    config.update(methods=args.methods, seed=args.seed, device=str(device), quick=args.quick,
                  compare_lufs=COMPARE_LUFS,
                  checkpoint=str(args.checkpoint) if args.checkpoint.exists() else None, auto_start=args.auto_start)

    sessions = load_sessions(args.cache_dir, max(config["cases"], 2), seed=args.seed,
                             duration_s=config["duration_s"], num_stems=config["stems"])
    config["parts"] = args.parts
    warm_up(sessions[0], device)
    options = {"methods": args.methods, "time_budget_s": config["time_budget_s"], "iterations": config["iterations"],
               "seed": args.seed, "device": device, "checkpoint": args.checkpoint, "auto_start": args.auto_start,
               "log": lambda line: print(line, file=sys.stderr)}
    results, summary, floor_a = [], {}, []
    if "songs" in args.parts:
        results = run_quality(sessions, cases=config["cases"], **options)
        summary = summarize(results)
        floor_a = same_song_floor(sessions, cases=config["cases"], seed=args.seed)
    clip_results = (run_clips(sessions, cases=config["cases"], pairs=config["clip_pairs"], **options)
                    if "clips" in args.parts and config["clip_pairs"] > 0 else [])
    clips = summarize_clips(clip_results) if clip_results else None
    balance = (run_balance(sessions, cases=config["cases"], seed=args.seed, device=device, log=options["log"])
               if "balance" in args.parts else [])
    print(format_report(summary, config, floor_a, clips, balance))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": config, "summary": summary, "floor_a": floor_a,
                                         "cases": [asdict(r) for r in results], "clips_summary": clips,
                                         "clips": [asdict(r) for r in clip_results],
                                         "balance": [asdict(r) for r in balance]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
