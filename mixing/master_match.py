"""Master matching: on the whole song, close the remaining gaps to the reference with the master bus.

Fitting (:mod:`mixing.fit`) moves every parameter, but on a few excerpts and
within a time budget. Matching compares whole songs and moves only master
settings, as a mastering engineer's matching EQ would; track strips are not
touched, so the balance of the tracks stays what fitting left. Each round
renders the whole mix (after the first, only the master bus runs again,
through :class:`~mixing.dsp.console.IncrementalRenderer`), measures the AF
features of the mix and the reference at the same integrated loudness, and
updates:

- the bark spectrum, with the match EQ (one gain per bark band of the AF
  loss, :mod:`mixing.dsp.match_eq`), by Gauss-Newton on the measured gap;
- for a stereo reference, the side-to-mid ratio of each bark band, with the
  multiband width (one side-signal width per match EQ band,
  :mod:`mixing.dsp.match_eq`), by a Gauss-Newton step on the side's bark gap
  less the mid's (the match EQ closes what the two share): left and right
  spectra can each match while the side does not, a top too wide or too
  narrow;
- the stereo width (side-to-mid energy) and imbalance, with
  ``master_width_pct`` (which scales the side signal) and
  ``master_balance_pct``, solved together on the channels' long-term
  powers, since on a lopsided mix the side signal carries imbalance too, for
  the mix as the new match EQ and band widths will make it; then the band
  widths' geometric mean moves into the global width (the same sound), so
  that each band keeps room both ways;
- the loudness, with ``master_loudness_lufs``: the true-peak ceiling takes
  some loudness off a mix that it limits, so the loudness stage is driven by
  what the last render fell short of the reference. With the ceiling pinning
  the peaks, the same loudness also brings the crest factor to the
  reference's.

A round whose step does not lower the loss is tried again with
``ROUND_FALLBACK_STEP`` of its match EQ and band-width steps (the
linearised step can overshoot); where that does not gain either, the rounds
stop.

Then the dynamics: fitting sees a few loud excerpts, each brought to the same
loudness, so it cannot see how much of the whole song sits below its loud
parts. At equal integrated loudness a song with quieter passages has a lower
mean spectrum in every band and a higher crest factor, a gap common to all
bark bands that no EQ can close. Its sign says which way the mix must go:

- mix below the reference (the mix is the more dynamic one): the master
  compressor's threshold is lowered by ``DYNAMICS_STEP_DB`` per step of
  strength as a slow leveller (ratio, attack and release at least
  ``LEVELLER``);
- mix above it (the reference is the more dynamic one, which no compressor
  can match): the master expander (:mod:`mixing.dsp.expander`) lowers the
  passages under its threshold at ratio ``EXPANDER_RATIO``; the threshold
  sits ``EXPANDER_BELOW_DB`` under the bus's loudness at strength 1 and
  ``EXPANDER_STEP_DB`` higher per further step.

Strength 1 is probed first, then 2 if it gained, or 0.5 if it did not. Each
probe is rendered and measured like a round, then once more after a round
that re-matches EQ, width, balance and loudness to it, and the better of the
two counts: a change of dynamics moves the spectrum and how much loudness the
ceiling takes. The best probe is kept only if it lowers the whole-song AF
loss by ``MIN_DYNAMICS_GAIN`` or more. Material up to ``BOTH_WAYS_MAX_S``
long, whose renders are cheap, is searched both ways and the better wins:
within a short clip, the gap says less about which way its dynamics should go.

Last, one more round whose match EQ step models the comparison itself: the
AF loss compares mix and reference at equal integrated loudness, so any EQ
change is followed by the gain that restores that loudness, and that gain
moves every band. The rounds before match the spectrum's shape and leave a
gap common to all bands (at the same loudness the mix's spectrum is denser
or sparser within each band than the reference's) that the restoring gain
undoes. Modelled, the step
can lower the bands that carry little of the loudness by raising a little
those that carry most of it. It is kept only if it lowers the loss.

Then, for a stereo reference, up to ``LEFT_RIGHT_ROUNDS`` rounds that move
the match EQ's left/right gains instead of its curve: one curve for both
channels leaves the gap between the channels' bark spectra (a reference
brighter on one side). Each is one Gauss-Newton step on it, with width and
balance solved for the mix as it will sound (``_matched_stereo``), and is
kept only if it lowers the loss. Where the first does not, half its step is
tried instead of a second round: the step can lower the bark term and raise
the crest factor more.

Last, the limiter drive (``master_limiter_drive_db``): the loudness rounds
bring the mix to the reference's loudness under a ceiling that the reference
may sit above (a louder master peaking at 0 dBFS, a plain sum of stems over
it) or well below, so the crest factor stays off. Matchering meets it by
limiting at the reference's peak level; here the drive pushes the mix further
into the ceiling (lower crest factor, louder) or backs it off (higher, quieter)
by the crest factor's gap, in ``DRIVE_PROBES`` probes kept only if they lower
the loss.

The parameters with the lowest whole-song AF loss are kept, so matching never
makes the mix worse by that measure. For a stereo reference that loss takes
the bark spectrum of the mid and the side
(:data:`mixing.features.MID_SIDE_FIT_BARK`), which sees the side, as the
paper's yardstick does; the left/right bark spectra (what fitting optimises)
still give the match EQ its gaps.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from mixing.dsp.console import IncrementalRenderer
from mixing.dsp.match_eq import channel_gains_db, match_eq_response_db
from mixing.dsp.pan import pan_gains, pan_pct_for_gains, width_matrix
from mixing.features import (
    MID_SIDE_FIT_BARK,
    bark_filterbank,
    bark_spectrum,
    mean_magnitude_spectrum,
    mid_side,
    power_spectrum,
)
from mixing.losses import WITHOUT_STEREO_TERMS, AudioFeatureLoss
from mixing.loudness import integrated_loudness_lufs, k_weighting_power_response, normalize_to_lufs
from mixing.params import (
    BAND_WIDTH_MAX_PCT,
    BAND_WIDTH_NAMES,
    MASTER_SPECS,
    MATCH_EQ_GAIN_NAMES,
    MATCH_EQ_LR_NAMES,
    MixParams,
)

ProgressCallback = Callable[[dict], None]

# The first round closes most of the gap and the second most of the rest (a third gained about 10 % in one of
# three bench cases and nothing in the others); each costs a master-bus render and features of the whole song.
DEFAULT_ROUNDS = 2
# Where a round's full step does not lower the loss, this share of it is tried before the rounds stop. The step is
# linearised: a band's level is the log of its bins' energy, so a boost whose weight varies across the band moves
# it more than the linear model says, and a large step can overshoot. On Hydrogen -> Sodium (bench/real.py, 20 s
# windows, 40 fit iterations) a full step raised the loss, so matching kept none of its EQ and band widths; with
# half of it kept the paper AF went 0.047 -> 0.023 (Matchering 0.066). Where a round gains it costs nothing.
ROUND_FALLBACK_STEP = 0.5
# Left/right rounds for a stereo reference, each after the last gained: on the six other-song bench cases the
# second took the mean AF loss from 0.00065 to 0.00062 (one case from 0.00097 to 0.00081) at one render more.
LEFT_RIGHT_ROUNDS = 2
# Where the first left/right round's step does not gain, this share of it is tried instead of a second round: on
# one of those six cases the full step lowered the bark term and raised the crest factor more (0.00176 ->
# 0.00199), half of it gained (0.00162).
LEFT_RIGHT_FALLBACK_STEP = 0.5
DYNAMICS_STEP_DB = 6.0
# Probes of the dynamics search one way, each rendered twice (the probe and the round after it). On the six
# other-song bench cases a third (strength 3) won once, by 4 %, at two more renders of the whole song (6 s).
DYNAMICS_PROBES = 2
# Up to this length (renders of under a second) both directions are probed: on 10 s clips the sign of the gap
# chose the expander where levelling would have done better (12 bench clip pairs: AF 0.00223 that way, 0.00213
# trying both, 0.00207 with levelling alone), while on whole songs it chose right in five of six.
BOTH_WAYS_MAX_S = 60.0
# Slow enough to ride the level of passages rather than of notes, so the transients (and the crest factor
# inside the loud parts) pass.
LEVELLER = {"master_comp_ratio": 2.0, "master_comp_attack_ms": 30.0, "master_comp_release_ms": 1000.0}
# The expander's probes run at ratio 2 with the threshold EXPANDER_BELOW_DB under the bus's integrated loudness
# at strength 1 and EXPANDER_STEP_DB higher per step of strength. On three bench cases whose reference was the
# more dynamic song, thresholds 6 dB under to 3 dB over and ratios 1.5-4 were tried on the matched mix, each
# followed by a round: the best sat 4.5, 0 and 0-3 dB under, where ratio 2 came within 26 % of the best ratio.
EXPANDER_BELOW_DB = 3.0
EXPANDER_STEP_DB = 3.0
EXPANDER_RATIO = 2.0
# A dynamics probe (and the round after it) is kept only when it lowers the whole-song AF loss by this share.
# Smaller gains come from details of this one reference: on same-song bench cases they did not carry over to
# the other half of the song, while levelling that closes a real gap in dynamics gained 10-30 %.
MIN_DYNAMICS_GAIN = 0.03
# Limiter drive probes after the last round: the crest factor's gap to the reference's times 1, then times 2 if
# that gained or 0.5 if it did not (the dynamics search's pattern). Gaps under MIN_DRIVE_GAP_DB are left alone.
DRIVE_PROBES = 2
MIN_DRIVE_GAP_DB = 0.25
# Keeps the Gauss-Newton step well conditioned where a band holds little energy.
_RIDGE = 1e-3
# Matching narrows a band's side to a tenth at most (-20 dB): a width it sets stays invertible, so the next
# round can read the side before it, and a band the reference has in mono is near mono.
MIN_MATCHED_BAND_WIDTH_PCT = 10.0


@dataclass
class MasterMatchResult:
    """The matched parameters, their whole-song render (2, samples) and the AF loss per round (round 0: before)."""

    params: MixParams
    audio: torch.Tensor
    start_loss: float
    loss: float
    history: list[float] = field(default_factory=list)


@torch.no_grad()
def match_master(
    renderer: IncrementalRenderer,
    params: MixParams,
    reference: torch.Tensor,
    *,
    rounds: int = DEFAULT_ROUNDS,
    level_dynamics: bool = True,
    both_ways_max_s: float = BOTH_WAYS_MAX_S,
    match_stereo: bool = True,
    progress: ProgressCallback | None = None,
) -> MasterMatchResult:
    """Set the match EQ, width, balance, loudness, limiter drive and master compressor of ``params`` so the whole mix's
    features meet the reference's.

    Args:
        renderer: over the session's trimmed tracks; it renders every round.
        params: the mix to finish (fitting's result); not modified.
        reference: the reference song (2, samples) at ``renderer.sample_rate``.
        rounds: measure-and-update rounds before the dynamics, each rendered once more at a shorter step
            where its full one did not gain; the result's render is measured too. With any, the
            loudness-modelled round runs last.
        level_dynamics: search the dynamics, levelling or expanding (False: compressor and expander stay as
            ``params`` has them).
        both_ways_max_s: songs up to this long probe both directions; longer ones the way the sign of
            the bark spectrum's common gap points.
        match_stereo: also match width and balance; False for a mono reference
            (``mixing.features.carries_stereo``): they stay as ``params`` has them
            and the loss leaves the stereo terms out.
        progress: called after each render with ``{"stage": "matching", "progress", "round", "loss"}``;
            ``round`` counts renders, ``progress`` is their share of the most there can be.

    Returns the best parameters seen (``params`` itself counts) with their render.
    """
    sample_rate = renderer.sample_rate
    loss_fn = AudioFeatureLoss(sample_rate, weights=None if match_stereo else WITHOUT_STEREO_TERMS)
    reference = reference.to(renderer.device, torch.float32)
    ref_lufs = integrated_loudness_lufs(reference, sample_rate)
    ref_features = loss_fn.features(reference.unsqueeze(0))
    ref_side_features = _with_mid_side_bark(ref_features, reference.unsqueeze(0), sample_rate)[0] if match_stereo \
        else None
    filterbank = bark_filterbank(sample_rate, loss_fn.n_fft, loss_fn.n_bands).to(renderer.device).double()

    both_ways = renderer.samples <= both_ways_max_s * sample_rate
    renders = (2 * rounds + 1 + (2 * DYNAMICS_PROBES * (2 if both_ways else 1) if level_dynamics else 0)
               + ((1 + LEFT_RIGHT_ROUNDS if match_stereo else 1) + DRIVE_PROBES if rounds else 0))
    history: list[float] = []

    def measure(candidate: MixParams) -> _Measured:
        audio = renderer.render(candidate)
        bus_lufs = float(candidate.master["master_loudness_lufs"]) - renderer.loudness_gain_db
        if math.isfinite(ref_lufs):
            compared, shortfall_db = normalize_to_lufs(audio, sample_rate, ref_lufs)
        else:
            compared, shortfall_db = audio, 0.0
        mix = compared.unsqueeze(0)
        magnitude = mean_magnitude_spectrum(mix, n_fft=loss_fn.n_fft, hop_length=loss_fn.hop_length)
        features = loss_fn.features(mix, magnitude)
        if match_stereo:
            # Judged by the mid and side spectra, which see a side too loud at the top where left and right
            # can each match; the left/right features still give the EQ its gap.
            side_features, side_magnitude = _with_mid_side_bark(features, mix, sample_rate)
            loss = loss_fn.compare(side_features, ref_side_features)[0]
        else:
            side_features = side_magnitude = None
            loss = loss_fn.compare(features, ref_features)[0]
        measured = _Measured(float(loss), candidate, audio, shortfall_db, features, magnitude[0].mean(0).double(),
                             bus_lufs, side_features, side_magnitude)
        history.append(measured.loss)
        if progress is not None:
            progress({"stage": "matching", "progress": len(history) / renders, "round": len(history) - 1,
                      "loss": measured.loss})
        return measured

    def update(measured: _Measured, *, loudness_modelled: bool = False, left_right: bool = False,
               share: float = 1.0) -> MixParams:
        # The render at the reference's loudness, as measure() compared it; kept for one candidate at a time only.
        compared = measured.audio * 10.0 ** (measured.shortfall_db / 20.0)
        return _updated(measured.params, compared, measured.shortfall_db, measured.features, ref_features,
                        measured.magnitude, filterbank, sample_rate, loss_fn.n_fft, match_stereo,
                        loudness_modelled=loudness_modelled, left_right=left_right, share=share,
                        side=(measured.side_features, ref_side_features, measured.side_magnitude))

    best = measure(copy.deepcopy(params))
    for _ in range(rounds):
        measured = measure(update(best))
        if measured.loss >= best.loss:
            # The full step overshot (see ROUND_FALLBACK_STEP); part of it can still gain, and the next round
            # measures the gaps afresh.
            measured = measure(update(best, share=ROUND_FALLBACK_STEP))
            if measured.loss >= best.loss:
                break  # neither step gained: keep the best and stop
        best = measured
    if level_dynamics:
        if both_ways:
            directions = (_levelled, _expanded)
        else:
            directions = (_expanded if _bark_offset(best.features, ref_features) > 0 else _levelled,)
        dynamic = min((_dynamics_search(direction, best, measure, update) for direction in directions),
                      key=lambda measured: measured.loss)
        if dynamic.loss <= (1 - MIN_DYNAMICS_GAIN) * best.loss:
            best = dynamic
    if rounds:
        best = min(best, measure(update(best, loudness_modelled=True)), key=lambda measured: measured.loss)
        for left_right_round in range(LEFT_RIGHT_ROUNDS if match_stereo else 0):
            measured = measure(update(best, left_right=True))
            if measured.loss < best.loss:
                best = measured
                continue
            if left_right_round == 0:
                # The step can trade a lower bark term for a higher crest factor, one channel against the other;
                # part of it can still gain. It takes the second round's render: the rounds end here either way.
                best = min(best, measure(update(best, left_right=True, share=LEFT_RIGHT_FALLBACK_STEP)),
                           key=lambda measured: measured.loss)
            break
        best = _drive_search(best, ref_features, measure)
    return MasterMatchResult(best.params, best.audio, history[0], best.loss, history)


@dataclass
class _Measured:
    """One render of ``params`` and what matching measured on it: ``audio`` fell ``shortfall_db`` short of the
    reference's loudness and was compared raised by that; ``magnitude`` (bins,) its mean STFT magnitude over
    channels; ``bus_lufs`` the loudness of the master bus before the loudness stage; for a stereo reference,
    ``side_features`` (its features with the mid/side bark spectrum, what ``loss`` compares) and
    ``side_magnitude`` (bins,), the side signal's mean STFT magnitude."""

    loss: float
    params: MixParams
    audio: torch.Tensor
    shortfall_db: float
    features: dict
    magnitude: torch.Tensor
    bus_lufs: float
    side_features: dict | None = None
    side_magnitude: torch.Tensor | None = None


def _drive_search(best: _Measured, ref_features: dict, measure: Callable[[MixParams], _Measured]) -> _Measured:
    """``best`` or a probe of ``master_limiter_drive_db`` with a lower loss. With the peaks at the ceiling,
    a dB more drive takes about a dB off the crest factor of what the ceiling limits and a dB less gives it
    back, so the probes move the drive by the gap between the mix's crest factor (mean over channels) and the
    reference's; the loudness stays, so the mix ends that much louder or quieter than the reference."""
    spec = MASTER_SPECS["master_limiter_drive_db"]
    gap_db = float((best.features["crest_factor_db"] - ref_features["crest_factor_db"]).mean())
    if abs(gap_db) < MIN_DRIVE_GAP_DB:
        return best
    start_db = float(best.params.master["master_limiter_drive_db"])

    def probe(share: float) -> _Measured:
        candidate = copy.deepcopy(best.params)
        candidate.master["master_limiter_drive_db"] = spec.clamp(start_db + share * gap_db)
        return measure(candidate)

    first = probe(1.0)
    second = probe(2.0 if first.loss < best.loss else 0.5)
    return min(best, first, second, key=lambda measured: measured.loss)


def _with_mid_side_bark(features: dict, mix: torch.Tensor, sample_rate: int) -> tuple[dict, torch.Tensor]:
    """``features`` of ``mix`` (1, 2, samples) with the bark spectrum of :data:`MID_SIDE_FIT_BARK` instead, and
    the side signal's mean STFT magnitude (bins,), float64."""
    convention = MID_SIDE_FIT_BARK
    magnitude = mean_magnitude_spectrum(mid_side(mix), n_fft=convention.n_fft, hop_length=convention.hop_length,
                                        window=convention.window)
    side_features = {**features, "bark_spectrum": bark_spectrum(mix, sample_rate, convention=convention,
                                                                magnitude=magnitude)}
    return side_features, magnitude[0, 1].double()


def _dynamics_search(direction: Callable[[_Measured, float], MixParams], start: _Measured,
                     measure: Callable[[MixParams], _Measured],
                     update: Callable[[_Measured], MixParams]) -> _Measured:
    """The best of up to ``DYNAMICS_PROBES`` probes of ``direction`` from ``start``, each judged after one
    round re-matching EQ, width, balance and loudness to it: strength 1, then 2, 3, ... while each gains on
    the last, or 0.5 when 1 did not gain on ``start``."""

    def settled(strength: float) -> _Measured:
        probe = measure(direction(start, strength))
        return min(probe, measure(update(probe)), key=lambda measured: measured.loss)

    found = settled(1.0)
    if found.loss >= start.loss:
        return min(found, settled(0.5), key=lambda measured: measured.loss)
    for strength in range(2, DYNAMICS_PROBES + 1):
        stronger = settled(float(strength))
        if stronger.loss >= found.loss:
            break
        found = stronger
    return found


def _bark_offset(mix_features: dict, ref_features: dict) -> float:
    """Mean over channels and bark bands of the mix's log bark spectrum minus the reference's (both at the
    same integrated loudness): above 0, the mix's mean spectrum sits higher, so its quiet passages are fewer
    or less quiet than the reference's."""
    return float((mix_features["bark_spectrum"] - ref_features["bark_spectrum"]).mean())


def _levelled(measured: _Measured, strength: float) -> MixParams:
    """The measured parameters with the master compressor's threshold ``strength`` dynamics steps lower, as a
    leveller (see LEVELLER)."""
    master = measured.params.master
    levelled = copy.deepcopy(measured.params)
    levelled.master["master_comp_threshold_db"] = MASTER_SPECS["master_comp_threshold_db"].clamp(
        master["master_comp_threshold_db"] - strength * DYNAMICS_STEP_DB)
    for name, least in LEVELLER.items():
        levelled.master[name] = min(max(master[name], least), MASTER_SPECS[name].max)
    return levelled


def _expanded(measured: _Measured, strength: float) -> MixParams:
    """The measured parameters with the master expander at EXPANDER_RATIO, its threshold EXPANDER_BELOW_DB under
    the bus's loudness moved up EXPANDER_STEP_DB per step of ``strength`` over 1."""
    expanded = copy.deepcopy(measured.params)
    threshold_db = measured.bus_lufs - EXPANDER_BELOW_DB + (strength - 1.0) * EXPANDER_STEP_DB
    for name, value in (("master_expander_threshold_db", threshold_db), ("master_expander_ratio", EXPANDER_RATIO)):
        expanded.master[name] = MASTER_SPECS[name].clamp(value)
    return expanded


def _updated(params: MixParams, audio: torch.Tensor, shortfall_db: float, mix_features: dict, ref_features: dict,
             magnitude: torch.Tensor, filterbank: torch.Tensor, sample_rate: int, n_fft: int,
             match_stereo: bool, *, loudness_modelled: bool = False, left_right: bool = False,
             share: float = 1.0, side: tuple = (None, None, None)) -> MixParams:
    """``params`` with match EQ, multiband width, width, balance and loudness moved to close the measured gaps;
    ``audio`` (2, samples): their render at the reference's loudness, which it fell ``shortfall_db`` short of.
    ``loudness_modelled``: the EQ step allows for the loudness restored after it (see ``_match_eq_gains``).
    ``left_right``: the match EQ's left/right gains move instead of its curve for both channels, to close the gap
    between the channels' bark spectra that one curve leaves (only with ``match_stereo``). ``share``: the part of
    each Gauss-Newton step taken (match EQ, left/right gains, band widths); width, balance and loudness are solved
    for the settings it gives. ``side``: the mix's and the reference's features with the mid/side bark spectrum and
    the mix's side magnitude (bins,) (``_with_mid_side_bark``); given, the multiband width moves too (not in a
    left/right round)."""
    updated = copy.deepcopy(params)
    master = updated.master
    loudness = MASTER_SPECS["master_loudness_lufs"]
    # The drive puts the output that far past the loudness on purpose: the shortfall it makes is not one.
    master["master_loudness_lufs"] = loudness.clamp(master["master_loudness_lufs"] + shortfall_db
                                                    + master["master_limiter_drive_db"])
    powers = _power_spectra(audio, n_fft) if loudness_modelled or match_stereo else None
    loudness_share = None
    if loudness_modelled:
        weighted = (powers["left"] + powers["right"]) * torch.from_numpy(
            k_weighting_power_response(sample_rate, n_fft)).to(audio.device)
        loudness_share = weighted / weighted.sum().clamp_min(1e-30)
    if left_right and match_stereo:
        master.update(_match_eq_lr_gains(master, mix_features, ref_features, magnitude, filterbank, sample_rate,
                                         n_fft, share=share))
    else:
        master.update(_match_eq_gains(master, mix_features, ref_features, magnitude, filterbank, sample_rate, n_fft,
                                      loudness_share=loudness_share, share=share))
    if not match_stereo:
        return updated
    side_features, ref_side_features, side_magnitude = side
    if side_features is not None and not left_right:
        master.update(_band_widths(master, side_features, ref_side_features, side_magnitude, filterbank,
                                   sample_rate, n_fft, share=share))
    # The new EQ and band widths move width and imbalance too whenever lows and highs sit differently in the
    # stereo field (mono bass under wide cymbals): set width and balance for the mix as it will sound with them.
    master["master_width_pct"], master["master_balance_pct"] = _matched_stereo(
        powers, params.master, master, float(ref_features["stereo_width"][0]),
        float(ref_features["stereo_imbalance"][0]), sample_rate, n_fft)
    _recentre_band_widths(master)
    return updated


def _band_widths(master: dict, side_features: dict, ref_side_features: dict, side_magnitude: torch.Tensor,
                 filterbank: torch.Tensor, sample_rate: int, n_fft: int, share: float = 1.0) -> dict[str, float]:
    """The multiband widths after ``share`` of one Gauss-Newton step on the gap between the side-to-mid ratio of
    each bark band and the reference's: the side's bark gap less the mid's, which the match EQ closes for both.

    The width response is linear in the widths, the step is taken in dB of each band's side (the sensitivities
    of ``_match_eq_gains`` for the side's ``side_magnitude`` (bins,)), so each round scales a width by the factor
    it asks for; widths stay within [MIN_MATCHED_BAND_WIDTH_PCT, BAND_WIDTH_MAX_PCT].
    """
    gap_db = (ref_side_features["bark_spectrum"] - side_features["bark_spectrum"])[0].double() * (20 / math.log(10))
    sensitivity, _ = _band_sensitivity(side_magnitude, filterbank, sample_rate, n_fft)
    step_db = share * _gauss_newton_step(sensitivity, gap_db[1] - gap_db[0])
    widths = torch.tensor([max(master[name], MIN_MATCHED_BAND_WIDTH_PCT) for name in BAND_WIDTH_NAMES],
                          dtype=torch.float64) * torch.pow(10.0, step_db / 20.0)
    return {name: min(max(float(width), MIN_MATCHED_BAND_WIDTH_PCT), BAND_WIDTH_MAX_PCT)
            for name, width in zip(BAND_WIDTH_NAMES, widths, strict=True)}


def _recentre_band_widths(master: dict) -> None:
    """Move the geometric mean of the multiband widths into the global width, in place, as far as no width leaves
    its range: the two stages scale the same side signal, so the sound stays, and each band keeps room both ways."""
    widths = [master[name] for name in BAND_WIDTH_NAMES]
    width_pct = master["master_width_pct"]
    if min(widths) <= 0.0 or width_pct <= 0.0:
        return
    mean = math.exp(sum(math.log(width / 100.0) for width in widths) / len(widths))
    # The factor divides every band width and multiplies the global width.
    least = max(max(widths) / BAND_WIDTH_MAX_PCT, MASTER_SPECS["master_width_pct"].min / width_pct)
    most = min(min(widths) / MIN_MATCHED_BAND_WIDTH_PCT, MASTER_SPECS["master_width_pct"].max / width_pct)
    if least > most:
        return
    factor = min(max(mean, least), most)
    master["master_width_pct"] = width_pct * factor
    for name, width in zip(BAND_WIDTH_NAMES, widths, strict=True):
        master[name] = width / factor


def _power_spectra(audio: torch.Tensor, n_fft: int) -> dict[str, torch.Tensor]:
    """Long-term power spectra (bins,), float64, of the ``left``, ``right``, ``side`` and ``mid`` signals of
    ``audio`` (2, samples). Frames do not overlap: a long-term average needs no more."""
    window = torch.hann_window(n_fft, device=audio.device)
    left, right = torch.stft(audio.float(), n_fft, n_fft, window=window, return_complex=True)
    return {name: power_spectrum(spectrum).mean(-1).double()
            for name, spectrum in (("left", left), ("right", right), ("side", left - right), ("mid", left + right))}


def _matched_stereo(powers: dict[str, torch.Tensor], old: dict, new: dict, ref_width: float,
                    ref_imbalance: float, sample_rate: int, n_fft: int) -> tuple[float, float]:
    """The width and balance, in %, that give the reference's width and imbalance features to a mix whose
    render had ``_power_spectra`` ``powers`` with the master settings ``old``, once the match EQ moves to
    ``new``'s gains and left/right gains and the multiband width to ``new``'s.

    Match EQ, width and balance are linear, and each channel's power, and
    the channels' cross-power, is all the two features read: per bin, the
    render's 2x2 covariance of the channels (cross-power ``(mid - side) /
    4``) is taken back through the old balance and width, scaled by the EQ
    change, which acts before both, and summed over bins. Width and balance
    are then solved together, because on a lopsided mix the side signal
    carries the imbalance.

    With the imbalance met the balance gains leave the channels'
    correlation alone, and the width feature is a function of that
    correlation and the imbalance, so the width is found on its own first,
    then the balance. Neither moves where the old width folded to mono or
    the old balance silenced a channel (neither can be undone), or a channel
    has no power; a mono mix keeps its width (no setting widens it).
    """
    width_spec, balance_spec = MASTER_SPECS["master_width_pct"], MASTER_SPECS["master_balance_pct"]
    unchanged = (old["master_width_pct"], old["master_balance_pct"])
    balance = _balance_matrix(old["master_balance_pct"])
    if old["master_width_pct"] <= 0.0 or float(balance.diagonal().min()) < 1e-6:
        return unchanged
    change_db = channel_gains_db(
        torch.tensor([new[name] - old[name] for name in MATCH_EQ_GAIN_NAMES], dtype=torch.float64),
        torch.tensor([new[name] - old[name] for name in MATCH_EQ_LR_NAMES], dtype=torch.float64))
    response_db = match_eq_response_db(change_db, sample_rate, n_fft).to(powers["left"].device)
    eq_gains = torch.pow(10.0, response_db / 20.0)  # (2, bins)
    cross = (powers["mid"] - powers["side"]) / 4.0
    rendered = torch.stack([torch.stack([powers["left"], cross]), torch.stack([cross, powers["right"]])])
    old_width = width_matrix(torch.tensor(old["master_width_pct"], dtype=torch.float64))[0]
    undo = torch.linalg.inv(balance @ old_width).to(rendered.device)
    before = torch.einsum("ij,jkb,lk->ilb", undo, rendered, undo)  # (2, 2, bins) before width and balance
    after_eq = eq_gains[:, None] * before * eq_gains[None, :]
    widths_old, widths_new = (match_eq_response_db(
        torch.tensor([[widths[name] / 100.0 for name in BAND_WIDTH_NAMES]], dtype=torch.float64), sample_rate,
        n_fft)[0].to(after_eq.device) for widths in (old, new))
    # The band widths' change per bin, where the old one can be undone (a band in mono cannot).
    ratio = torch.where(widths_old > 1e-6, widths_new / widths_old.clamp_min(1e-6), torch.ones_like(widths_old))
    if bool((ratio != 1.0).any()):
        band = width_matrix(100.0 * ratio)  # (bins, 2, 2)
        after_eq = torch.einsum("bij,jkb,blk->ilb", band, after_eq, band)
    covariance = after_eq.sum(-1).cpu()
    if float(covariance[0, 0]) <= 0.0 or float(covariance[1, 1]) <= 0.0:
        return unchanged

    # The imbalance i sets the right-to-left power ratio r; the width feature w then needs the correlation c.
    imbalance = min(max(ref_imbalance, -1 + 1e-6), 1 - 1e-6)
    ratio = (1 + imbalance) / (1 - imbalance)
    width = max(ref_width, 0.0)
    wanted = (1 + ratio) * (1 - width) / (2 * math.sqrt(ratio) * (1 + width))
    widths_pct = torch.linspace(width_spec.min, width_spec.max, 4001, dtype=torch.float64)
    matrices = width_matrix(widths_pct)
    widened = matrices @ covariance @ matrices.transpose(-1, -2)  # (widths, 2, 2)
    correlation = widened[:, 0, 1] / (widened[:, 0, 0] * widened[:, 1, 1]).clamp_min(1e-30).sqrt()
    # Ties (a flat stretch of the correlation) go to the width nearest the old one.
    miss = (correlation - wanted).abs() + 1e-9 * (widths_pct - old["master_width_pct"]).abs()
    best = int(torch.argmin(miss))
    width_pct = float(widths_pct[best])
    left_power, right_power = float(widened[best, 0, 0]), float(widened[best, 1, 1])
    # The balance stage's gains must bring the right-to-left power ratio from the widened mix's to ``ratio``.
    right_over_left = math.sqrt(ratio * left_power / max(right_power, 1e-30))
    return width_pct, balance_spec.clamp(pan_pct_for_gains(1.0, right_over_left, 2))


def _balance_matrix(balance_pct: float) -> torch.Tensor:
    """The balance stage (the pan of a stereo signal) as a 2x2 diagonal matrix on (left, right)."""
    return torch.diag(pan_gains(torch.tensor([balance_pct], dtype=torch.float64), 2)[0])


def _band_sensitivity(magnitude: torch.Tensor, filterbank: torch.Tensor, sample_rate: int,
                      n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """How each bark band's level (dB) moves per dB of each match EQ gain, for a mix whose mean STFT magnitude
    is ``magnitude`` (bins,): (bands, gains), the band's filterbank-weighted average of the interpolation
    weights; and those weights (bins, gains)."""
    weights = match_eq_response_db(torch.eye(len(MATCH_EQ_GAIN_NAMES), dtype=torch.float64, device=magnitude.device),
                                   sample_rate, n_fft).T
    band_energy = filterbank * magnitude  # (bands, bins)
    return (band_energy @ weights) / band_energy.sum(dim=1, keepdim=True).clamp_min(1e-30), weights


def _match_eq_gains(master: dict, mix_features: dict, ref_features: dict, magnitude: torch.Tensor,
                    filterbank: torch.Tensor, sample_rate: int, n_fft: int,
                    loudness_share: torch.Tensor | None = None, share: float = 1.0) -> dict[str, float]:
    """Match EQ gains after ``share`` of one Gauss-Newton step on the bark-spectrum gap (mean over channels).

    ``magnitude`` (bins,) is the mix's mean STFT magnitude; ``filterbank`` (bands, bins).
    ``loudness_share`` (bins,), summing to 1: each bin's share of the mix's K-weighted power. Given, the step
    allows for the gain that brings the mix back to the reference's loudness after it, to first order: that
    gain moves every band by the share-weighted mean of the EQ change in dB (gating left out).
    """
    gap_db = (ref_features["bark_spectrum"] - mix_features["bark_spectrum"])[0].mean(0).double() * (20 / math.log(10))
    sensitivity, weights = _band_sensitivity(magnitude, filterbank, sample_rate, n_fft)
    if loudness_share is not None:
        sensitivity = sensitivity - (loudness_share.to(weights.dtype) @ weights)[None, :]
    gains = torch.tensor([master[name] for name in MATCH_EQ_GAIN_NAMES], dtype=torch.float64)
    gains = gains + share * _gauss_newton_step(sensitivity, gap_db)
    # A gain common to every band is undone by the loudness stage (with the share modelled, the ridge keeps the
    # step free of one); centring keeps the range for the shape.
    return _clamped_gains(MATCH_EQ_GAIN_NAMES, gains - gains.mean())


def _match_eq_lr_gains(master: dict, mix_features: dict, ref_features: dict, magnitude: torch.Tensor,
                       filterbank: torch.Tensor, sample_rate: int, n_fft: int, share: float = 1.0) -> dict[str, float]:
    """Match EQ left/right gains after ``share`` of one Gauss-Newton step on the gap between the channels: the
    reference's left-minus-right bark spectrum less the mix's, with the sensitivities of ``_match_eq_gains``."""
    gap_db = (ref_features["bark_spectrum"] - mix_features["bark_spectrum"])[0].double() * (20 / math.log(10))
    lr_gap_db = gap_db[0] - gap_db[-1]
    sensitivity, _ = _band_sensitivity(magnitude, filterbank, sample_rate, n_fft)
    gains = torch.tensor([master[name] for name in MATCH_EQ_LR_NAMES], dtype=torch.float64)
    return _clamped_gains(MATCH_EQ_LR_NAMES, gains + share * _gauss_newton_step(sensitivity, lr_gap_db))


def _gauss_newton_step(sensitivity: torch.Tensor, gap_db: torch.Tensor) -> torch.Tensor:
    """The gain change (gains,), on the CPU, that best closes ``gap_db`` (bands,) under ``sensitivity``
    (bands, gains), ridge-regularised so that a band holding little energy cannot demand a huge gain."""
    ridge = _RIDGE * torch.eye(sensitivity.shape[1], dtype=torch.float64, device=sensitivity.device)
    lhs = sensitivity.T @ sensitivity + ridge
    return torch.linalg.solve(lhs, sensitivity.T @ gap_db.to(sensitivity.device)).cpu()


def _clamped_gains(names: Sequence[str], gains: torch.Tensor) -> dict[str, float]:
    """``gains`` (len(names),) by name, each within its schema range."""
    return {name: MASTER_SPECS[name].clamp(float(value)) for name, value in zip(names, gains, strict=True)}
