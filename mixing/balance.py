"""Reference balance: the track levels and pans that best explain the reference's long-term spectra.

The AF loss compares a few mix-level features (24 bark bands per channel,
width, imbalance, level, crest factor), and many balances of the tracks
score alike on them: fitting from the rule-based start moves levels and pans
little and not reliably toward the reference's. The reference says more than
those features: its long-term power spectrum in each channel and the
coherence of its two channels, at a resolution fine enough that tracks with
different spectra leave different fingerprints. Uncorrelated tracks add in
power, so in each band ``f``

    P_L(f) = m(f) sum_i x_i^2  S_i,LL(f)
    P_R(f) = m(f) sum_i y_i^2  S_i,RR(f)
    C(f)   = m(f) sum_i x_i y_i S_i,LR(f)      (real part of the cross-spectrum)

where ``S_i`` are the long-term (cross-)spectra of track ``i`` after its
strip at the starting settings, ``(x_i, y_i)`` its amplitude gains into the
left and right channels (its level and pan) and ``m(f)`` a smooth curve that
all tracks share (the master EQ, and whatever tilt the tracks' EQs have in
common). The gains are fitted to the log spectra, with a robust (Cauchy)
loss so that a band one song has and the other lacks does not drag a track
far, and to the coherence ``C / sqrt(P_L P_R)``. Gaussian priors keep each
track's level within a few dB of the start and the shared curve within a
few dB of flat; the levels must not fall further apart than the fit's
balance floor allows.

The estimate moves each track's fader and sets its pan; the fit then starts
from there. Only long-term statistics are used, so the reference may hold
other music than the stems (another song, or another part of the same song).
A reference that is the stems' own mix, time-aligned with them, is read over
time instead (:mod:`mixing.aligned`), which separates tracks of overlapping
spectrum; :func:`balance_to_reference` detects it and then skips the floor.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mixing.dsp.pan import pan, pan_gains, pan_pct_for_gains
from mixing.dsp.stages import strips_before_pan
from mixing.features import power_spectrum
from mixing.fit import MAX_LEVEL_DROP_DB
from mixing.params import TRACK_SPECS, MixParams

N_FFT = 4096
BANDS_PER_OCTAVE = 6
LOWEST_HZ = 30.0
HIGHEST_HZ = 16000.0
# Hat functions over log frequency that make up the shared curve m(f): about one per octave.
CURVE_POINTS = 10
# The curve's own prior (one standard deviation per point, in dB of power): without it, the curve and
# the levels of tracks that own different octaves trade freely (a bass can be raised by either); with
# it, on eight bench pairs, the AF loss after fitting was 0.00112 against 0.00182 (no prior),
# 0.00148 (no curve) and 0.00195 (no balance estimate at all).
CURVE_SIGMA_DB = 3.0
# How far, as one standard deviation, a track's level may move from the start.
PRIOR_SIGMA_DB = 6.0
ITERATIONS = 300
# Bands this far below the reference's loudest band (or where the tracks hold nothing) carry no evidence.
_BAND_FLOOR_DB = 60.0
_COHERENCE_WEIGHT = 4.0
# Most passes of moving the faders toward a time-aligned reference's levels (pin_levels).
_ALIGNED_PASSES = 5
# Log-power errors beyond about this many nepers (1.5 Np = 6.5 dB) count less and less (a Cauchy loss):
# a band that one song has and the other lacks must not drag a whole track down.
_ROBUST_SCALE = 1.5


@dataclass
class BalanceEstimate:
    """Per track: ``level_db`` (change of its level after the strip; their mean is 0 as estimated, and
    :func:`balance_to_reference` may raise some to keep the floor) and ``pan_pct``.

    ``loss``: the final value of the fitted objective (log-spectral error plus prior). ``target_level_db``: read
    off a reference time-aligned with the stems, each track's measured level there after its strip and pan (up to
    one shared offset), which :func:`pin_levels` restores after the fit; None for the spectral estimate.
    """

    level_db: list[float]
    pan_pct: list[float]
    loss: float
    target_level_db: list[float] | None = None


def band_matrix(sample_rate: int, n_fft: int = N_FFT) -> torch.Tensor:
    """(bands, bins) 0/1 matrix summing FFT bins into 1/6-octave bands from 30 Hz to 16 kHz (or 0.45 fs).

    Bands that hold no bin at this resolution are left out.
    """
    top_hz = min(HIGHEST_HZ, 0.45 * sample_rate)
    bands = int(math.log2(top_hz / LOWEST_HZ) * BANDS_PER_OCTAVE)
    edges_hz = LOWEST_HZ * 2.0 ** (torch.arange(bands + 1, dtype=torch.float64) / BANDS_PER_OCTAVE)
    freqs_hz = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64)
    matrix = ((freqs_hz[None, :] >= edges_hz[:-1, None]) & (freqs_hz[None, :] < edges_hz[1:, None])).double()
    return matrix[matrix.sum(dim=1) > 0]


def cross_spectra(audio: torch.Tensor) -> torch.Tensor:
    """Long-term spectra of ``audio`` (batch, channels 1 or 2, samples): (3, bins) float64.

    Rows: left power, right power and the real part of left times conjugate
    right, averaged over frames and the batch; a mono signal gives its power three times.
    """
    if audio.dim() != 3 or audio.shape[1] not in (1, 2):
        raise ValueError(f"audio: expected shape (batch, channels 1 or 2, samples), got {tuple(audio.shape)}")
    window = torch.hann_window(N_FFT, dtype=audio.dtype, device=audio.device)
    flat = audio.reshape(-1, audio.shape[-1])
    spectra = torch.stft(flat, N_FFT, N_FFT // 2, window=window, return_complex=True, pad_mode="constant")
    spectra = spectra.reshape(audio.shape[0], audio.shape[1], *spectra.shape[-2:])
    left, right = spectra[:, 0], spectra[:, -1]
    rows = [power_spectrum(left), power_spectrum(right), (left * right.conj()).real]
    return torch.stack([row.mean(dim=(0, -1)).double() for row in rows]).cpu()


def estimate_balance(
    processed: Sequence[torch.Tensor],
    reference: torch.Tensor,
    sample_rate: int,
    *,
    start_pan_pct: Sequence[float],
    match_stereo: bool = True,
    prior_sigma_db: float = PRIOR_SIGMA_DB,
    iterations: int = ITERATIONS,
) -> BalanceEstimate:
    """Fit each track's level and pan so that the tracks' spectra add up to the reference's.

    Args:
        processed: per track, its audio after the strip and before the pan, (batch, channels, samples).
        reference: (batch, 2, samples); other music than the tracks is fine.
        start_pan_pct: the start's pans, kept for a mono reference. (The search
            itself starts from centred tracks: the reference decides the pans.)
        match_stereo: False for a mono reference: its channels say nothing about pans,
            so only levels are fitted.
        prior_sigma_db: how far, as one standard deviation, a level may move from the start.
    """
    if len(processed) != len(start_pan_pct) or not processed:
        raise ValueError(f"{len(processed)} processed tracks for {len(start_pan_pct)} start pans")
    return _fit_balance([cross_spectra(track) for track in processed], cross_spectra(reference), sample_rate,
                        channels=[track.shape[1] for track in processed], start_pan_pct=start_pan_pct,
                        match_stereo=match_stereo, prior_sigma_db=prior_sigma_db, iterations=iterations)


def _fit_balance(track_spectra: Sequence[torch.Tensor], ref_spectra: torch.Tensor, sample_rate: int, *,
                 channels: Sequence[int], start_pan_pct: Sequence[float], match_stereo: bool, prior_sigma_db: float,
                 iterations: int) -> BalanceEstimate:
    """:func:`estimate_balance` on the tracks' and the reference's :func:`cross_spectra` ((3, bins) each)."""
    bands = band_matrix(sample_rate)
    track_spectra = torch.stack([bands @ spectra.T for spectra in track_spectra])  # (tracks, bands, 3)
    ref_spectra = bands @ ref_spectra.T  # (bands, 3)

    # Bands where the reference and the tracks both hold energy.
    ref_power = ref_spectra[:, :2].clamp_min(0.0)
    track_power = track_spectra[:, :, :2].sum(dim=0)
    floor = 10.0 ** (-_BAND_FLOOR_DB / 10.0)
    usable = ((ref_power > floor * ref_power.max()) & (track_power > floor * track_power.max())).all(dim=1)
    if int(usable.sum()) < 2:
        return BalanceEstimate([0.0] * len(channels), list(map(float, start_pan_pct)), 0.0)
    track_spectra, ref_spectra = track_spectra[:, usable], ref_spectra[usable]
    log_freq = torch.log2(bands[usable] @ torch.fft.rfftfreq(N_FFT, 1.0 / sample_rate, dtype=torch.float64)
                          / bands[usable].sum(dim=1))
    centres = torch.linspace(float(log_freq[0]), float(log_freq[-1]), CURVE_POINTS, dtype=torch.float64)
    spacing = max(float(centres[1] - centres[0]), 1e-6)
    curve_basis = (1.0 - (log_freq[:, None] - centres[None, :]).abs() / spacing).clamp_min(0.0)  # (bands, points)

    # The search starts from centred tracks, whatever the start's pans: the reference decides.
    centre_gains = torch.stack([pan_gains(torch.tensor([0.0]), c)[0] for c in channels]).double()
    log_start = centre_gains.log()  # (tracks, 2)
    centre_power = centre_gains.square().sum(dim=1)
    ref_log = ref_spectra[:, :2].log()
    ref_coherence = ref_spectra[:, 2] / (ref_spectra[:, 0] * ref_spectra[:, 1]).sqrt()
    sigma = prior_sigma_db / (20.0 / math.log(10.0))  # in log amplitude (nepers)
    curve_sigma = CURVE_SIGMA_DB / (10.0 / math.log(10.0))  # in log power

    level = torch.zeros(len(channels), dtype=torch.float64, requires_grad=True)
    spread = torch.zeros(len(channels), dtype=torch.float64, requires_grad=match_stereo)
    curve = torch.zeros(CURVE_POINTS, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([level, curve, *([spread] if match_stereo else [])], lr=0.05)

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        gains = torch.exp(log_start + level[:, None] + torch.stack([spread, -spread], dim=1))  # (tracks, 2)
        shared = torch.exp(curve_basis @ curve)
        left = shared * (gains[:, 0, None] ** 2 * track_spectra[:, :, 0]).sum(dim=0)
        right = shared * (gains[:, 1, None] ** 2 * track_spectra[:, :, 1]).sum(dim=0)
        cross = shared * ((gains[:, 0] * gains[:, 1])[:, None] * track_spectra[:, :, 2]).sum(dim=0)
        level_change = 0.5 * torch.log(gains.square().sum(dim=1) / centre_power)
        log_error = torch.stack([left, right], dim=1).clamp_min(1e-30).log() - ref_log
        error = (_ROBUST_SCALE**2 * torch.log1p((log_error / _ROBUST_SCALE).square())).mean()
        if match_stereo:
            error = error + _COHERENCE_WEIGHT * (cross / (left * right).sqrt() - ref_coherence).square().mean()
        prior = (((level_change - level_change.mean()) / sigma).square().mean()
                 + (curve / curve_sigma).square().mean()) / len(log_freq)
        return error + prior, gains

    for _ in range(iterations):
        loss, _ = objective()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        loss, gains = objective()
    level_db = (10.0 * torch.log10(gains.square().sum(dim=1) / centre_power)).tolist()
    mean_db = sum(level_db) / len(level_db)
    pans = [pan_pct_for_gains(float(x), float(y), c) if match_stereo else float(p)
            for (x, y), c, p in zip(gains.tolist(), channels, start_pan_pct, strict=True)]
    return BalanceEstimate([value - mean_db for value in level_db], pans, float(loss))


def balance_to_reference(
    start: MixParams,
    tracks: Sequence[torch.Tensor],
    reference: torch.Tensor,
    sample_rate: int,
    *,
    match_stereo: bool = True,
    max_level_drop_db: float = MAX_LEVEL_DROP_DB,
    device: torch.device | str | None = None,
) -> tuple[MixParams, BalanceEstimate]:
    """``start`` with each track's fader and pan set from :func:`estimate_balance` over the whole song.

    Args:
        tracks: trimmed stems, each (channels, samples), all the same length.
        reference: (2, samples) at ``sample_rate``.
        max_level_drop_db: the balance floor of :func:`mixing.fit.fit_params`, kept here
            too: no track is moved further below the loudest than this, unless it
            already sat lower at the start, and then not further than it sat.

    Whole songs, not excerpts, are compared: their long-term spectra are the
    statistics the estimate rests on, and high-energy excerpts of two songs
    sample their arrangements unevenly.
    Only the fader moves, as an engineer would move it: where a track's
    compressor engages, its level after the strip moves by less than the
    estimate.
    """
    # mixing.aligned builds on this module's bands, so it is imported here rather than at the top.
    from mixing.aligned import find_alignment

    device = torch.device(device) if device is not None else torch.device("cpu")
    exact_iir = device.type == "cpu"
    centre = torch.zeros(1, device=device)
    stem_sum = sum(track.expand(2, -1) for track in tracks)
    alignment = find_alignment(stem_sum, reference, sample_rate)
    del stem_sum
    if alignment.aligned:
        return _aligned_balance(start, tracks, reference, sample_rate, alignment.offset_samples, device)
    track_spectra, start_db = [None] * len(tracks), [0.0] * len(tracks)
    with torch.no_grad():
        # Only each processed track's spectra and level are kept.
        for position, processed in strips_before_pan([track.to(device) for track in tracks], start.tracks,
                                                     sample_rate, exact_iir):
            processed = processed[None]
            track_spectra[position] = cross_spectra(processed)
            # The level as the fit's floor measures it: after the pan stage (centred; constant power for mono).
            start_db[position] = 10.0 * math.log10(float(pan(processed, sample_rate, centre).square().mean()) + 1e-12)
    estimate = _fit_balance(track_spectra, cross_spectra(reference.to(device)[None]), sample_rate,
                            channels=[track.shape[0] for track in tracks],
                            start_pan_pct=[row["pan_pct"] for row in start.tracks], match_stereo=match_stereo,
                            prior_sigma_db=PRIOR_SIGMA_DB, iterations=ITERATIONS)
    estimate.level_db = _within_floor(start_db, estimate.level_db, max_level_drop_db)
    balanced = copy.deepcopy(start)
    gain = TRACK_SPECS["gain_db"]
    for row, change_db, pan_pct in zip(balanced.tracks, estimate.level_db, estimate.pan_pct, strict=True):
        row["gain_db"] = gain.clamp(row["gain_db"] + change_db)
        row["pan_pct"] = pan_pct
    return balanced, estimate


def _aligned_balance(start: MixParams, tracks: Sequence[torch.Tensor], reference: torch.Tensor, sample_rate: int,
                     offset_samples: int, device: torch.device) -> tuple[MixParams, BalanceEstimate]:
    """``start`` with the balance the time-aligned ``reference`` holds (:func:`mixing.aligned.aligned_gains` on the
    raw tracks): each track's pan from its two gains, and its fader moved until its level after the strip and
    the pan is its level in the reference (up to one shared offset; :func:`pin_levels`). The floor is not
    applied: the reference shows where each track sits, however far down."""
    from mixing.aligned import aligned_gains

    gains = aligned_gains(tracks, reference, sample_rate, offset_samples).double()
    balanced = copy.deepcopy(start)
    targets_db = []
    for row, track, (left, right) in zip(balanced.tracks, tracks, gains.tolist(), strict=True):
        raw_power = track.double().square().mean(dim=-1).expand(2)
        targets_db.append(10.0 * math.log10(float((torch.tensor([left, right]) ** 2 * raw_power).mean()) + 1e-30))
        row["pan_pct"] = pan_pct_for_gains(left, right, track.shape[0])
    balanced = pin_levels(balanced, tracks, targets_db, sample_rate, device=device)
    changes_db = [after["gain_db"] - before["gain_db"] for before, after in zip(start.tracks, balanced.tracks,
                                                                                 strict=True)]
    return balanced, BalanceEstimate(changes_db, [row["pan_pct"] for row in balanced.tracks], 0.0,
                                     target_level_db=targets_db)


def pin_levels(params: MixParams, tracks: Sequence[torch.Tensor], targets_db: Sequence[float], sample_rate: int,
               *, device: torch.device | str | None = None,
               measure_levels_db: Callable[[MixParams, Sequence[int]], list[float]] | None = None) -> MixParams:
    """``params`` with each track's fader moved until its level after the strip and pan is its target in
    ``targets_db`` (up to one shared offset; tracks as :func:`balance_to_reference` takes them). After the fit,
    this restores a measured balance that its EQ and compressor moves shifted.

    Each track's compressor threshold moves with its fader, so the compressor acts on the moved signal as it
    did before (the same gain reduction over time) and the level moves by the fader's change: a fader alone,
    ahead of an engaged compressor, moves the level by less and changes how the track is compressed. Where a
    threshold or fader reaches the end of its range that no longer holds, so after the first pass each
    track's step is its residual over the slope the last pass measured (a secant step).

    Only the first pass runs every strip. The strip is linear up to its compressor, whose curve depends on the
    level over the threshold alone, so a track whose threshold moved with its fader (or whose compressor is off)
    comes out scaled by the fader's change: its new level is known without running it again. Only the others
    (a threshold stopped at the end of its range) are measured again.

    ``measure_levels_db(params, positions)``: the levels in dB after strip and pan under ``params`` of the tracks
    at ``positions``, in that order (a session's renderer, which keeps the strips for the next render); default:
    the strips run here."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    exact_iir = device.type == "cpu"
    pinned = copy.deepcopy(params)
    gain, threshold = TRACK_SPECS["gain_db"], TRACK_SPECS["comp_threshold_db"]
    slopes = [1.0] * len(tracks)
    previous: tuple[list[float], list[float]] | None = None
    if measure_levels_db is None:
        def measure_levels_db(candidate: MixParams, positions: Sequence[int]) -> list[float]:
            return _panned_levels_db(candidate, tracks, sample_rate, exact_iir, device, positions=positions)
    levels_db = measure_levels_db(pinned, range(len(tracks)))
    unknown: list[int] = []
    for _ in range(_ALIGNED_PASSES):
        if unknown:
            for position, level_db in zip(unknown, measure_levels_db(pinned, unknown), strict=True):
                levels_db[position] = level_db
        gains_db = [row["gain_db"] for row in pinned.tracks]
        if previous is not None:
            for index, (gain_db, level_db, gain_before, level_before) in enumerate(
                    zip(gains_db, levels_db, *previous, strict=True)):
                if abs(gain_db - gain_before) > 1e-3:
                    # Between a fully compressed track (1/ratio, at least 1/20) and a linear one.
                    slopes[index] = min(max((level_db - level_before) / (gain_db - gain_before), 0.05), 1.0)
        previous = (gains_db, list(levels_db))
        residual_db = [target - level for target, level in zip(targets_db, levels_db, strict=True)]
        mean_db = sum(residual_db) / len(residual_db)
        if max(abs(residual - mean_db) for residual in residual_db) < 0.05:
            break
        unknown = []
        for index, (row, change_db, slope) in enumerate(zip(pinned.tracks, residual_db, slopes, strict=True)):
            moved_db = gain.clamp(row["gain_db"] + (change_db - mean_db) / slope) - row["gain_db"]
            threshold_before_db = row["comp_threshold_db"]
            row["gain_db"] += moved_db
            row["comp_threshold_db"] = threshold.clamp(threshold_before_db + moved_db)
            if row["comp_ratio"] == 1.0 or abs(row["comp_threshold_db"] - threshold_before_db - moved_db) < 1e-9:
                levels_db[index] += moved_db  # the strip's output scaled by the fader's change
            elif moved_db != 0.0:
                unknown.append(index)
    return pinned


def _panned_levels_db(params: MixParams, tracks: Sequence[torch.Tensor], sample_rate: int, exact_iir: bool,
                      device: torch.device, *, positions: Sequence[int] | None = None) -> list[float]:
    """The level in dB after its strip and pan under ``params`` of each track, or of the tracks at ``positions``
    (in that order)."""
    chosen = list(range(len(tracks))) if positions is None else list(positions)
    levels_db = [0.0] * len(chosen)
    with torch.no_grad():
        for place, processed in strips_before_pan([tracks[index].to(device) for index in chosen],
                                                  [params.tracks[index] for index in chosen], sample_rate, exact_iir):
            pan_pct = params.tracks[chosen[place]]["pan_pct"]
            placed = pan(processed[None], sample_rate, torch.tensor([pan_pct], device=device))
            levels_db[place] = 10.0 * math.log10(float(placed.square().mean()) + 1e-12)
    return levels_db


def _within_floor(start_db: Sequence[float], change_db: Sequence[float], max_drop_db: float) -> list[float]:
    """Level changes raised where needed so that no track ends more than ``max_drop_db`` below the loudest,
    or more than it started below the loudest where that was further."""
    ended_db = [s + c for s, c in zip(start_db, change_db, strict=True)]
    loudest_start_db, loudest_db = max(start_db), max(ended_db)
    return [max(c, loudest_db - max(max_drop_db, loudest_start_db - s) - s)
            for s, c in zip(start_db, change_db, strict=True)]

