"""Stem preflight: every stem scanned in full before mixing, each problem said in plain words.

:func:`preflight` returns :class:`Finding` s, each with a severity and, where a fix cannot make anything
worse, the name of that fix. Two fixes change audio (:func:`apply_fix`): ``remove_dc`` subtracts each
channel's mean (a constant offset carries no sound and only eats headroom) and ``fold_to_mono`` averages
two channels that are the same (the mix can then pan the track). ``delete_stem`` (a silent stem, an exact
or polarity-inverted duplicate, a stem that is the whole mix or the reference) is done by the caller.
Polarity is never flipped automatically: two tracks in opposite polarity (a snare's top and bottom
microphones) may be meant that way.

Every function takes audio as float tensors ``(channels, samples)`` (channels 1 or 2) with an explicit
``sample_rate``. A stem is read once (:func:`scan_stem`) and kept only as its measurements and its channel
average in blocks of :data:`CORRELATION_DECIMATION` samples (a low-pass that keeps a copy a copy), so a
40-track session need not be held at once. Pairs of stems are compared at zero lag (copies come from one
export); a full mix or the reference among the stems at any lag, by FFT on blocks of
:data:`LAG_DECIMATION` of those (a master is often shifted against its stems).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch

from mixing.audio.validate import SILENCE_PEAK_DBFS

Severity = Literal["problem", "warning", "info"]
Fix = Literal["remove_dc", "fold_to_mono", "delete_stem"]
AUDIO_FIXES = ("remove_dc", "fold_to_mono")

# A flat top of 3 or more samples at full scale is clipping; a single sample there is a normalized peak.
CLIP_LEVEL = 0.999
CLIP_RUN_MIN_SAMPLES = 3
# A constant offset above -40 dBFS (1 % of full scale) is worth removing; below it is harmless.
DC_OFFSET_MAX_DBFS = -40.0
NEAR_SILENT_PEAK_DBFS = -60.0
# Left and right that differ by less than -60 dB of the stem's peak are one signal twice.
DUAL_MONO_DIFFERENCE_DB = -60.0
# Stems from one export differ in length by their tails only; this much more means another export.
LENGTH_DIFFERENCE_S = 1.0
# Leading silence is what lies below this level; a stem that starts later than this says so (info).
ONSET_LEVEL_DBFS = -60.0
LATE_START_S = 1.0
# A real song has a dozen parts entering late (Caesium: 16 of 16); a message names the first few.
LISTED = 5
DUPLICATE_CORRELATION = 0.99
INVERTED_CORRELATION = -0.95
# Below this but above INVERTED_CORRELATION: largely opposite polarity, worth a listen, not a fix.
OPPOSED_CORRELATION = -0.5
# A song's master is offset, compressed and limited against its stems: Caesium's correlates 0.7 with them.
FULL_MIX_CORRELATION = 0.6
CORRELATION_DECIMATION = 4
# Lags are searched at 44.1 kHz / 32 (about 1.4 kHz): enough to line up a full mix, at a tenth of the cost.
LAG_DECIMATION = 8


@dataclass(frozen=True)
class Finding:
    """One finding. ``tracks``: indices of the stems it concerns (empty for the session as a whole);
    ``track``: the one stem ``fix`` applies to (None when there is no fix). ``values``: the measurements
    behind it, each name carrying its unit."""

    check: str
    severity: Severity
    message: str
    tracks: tuple[int, ...] = ()
    fix: Fix | None = None
    track: int | None = None
    values: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**asdict(self), "tracks": list(self.tracks)}


def _db(amplitude: float) -> float:
    return 20 * math.log10(amplitude) if amplitude > 0 else -math.inf


def peak_dbfs(audio: torch.Tensor) -> float:
    """Sample peak of ``audio`` (any shape) in dBFS; ``-inf`` for digital silence."""
    return _db(float(audio.abs().max())) if audio.numel() else -math.inf


def clipped_runs(audio: torch.Tensor, *, level: float = CLIP_LEVEL,
                 min_samples: int = CLIP_RUN_MIN_SAMPLES) -> tuple[int, int]:
    """``(runs, samples)``: flat tops of at least ``min_samples`` consecutive samples at or beyond
    ``level`` with one sign, in any channel of ``audio`` ``(channels, samples)``, and the samples in them."""
    runs = samples = 0
    for sign in (1, -1):
        hot = (sign * audio >= level).to(torch.int8)
        edges = torch.diff(torch.nn.functional.pad(hot, (1, 1)), dim=-1)
        starts = (edges == 1).nonzero()
        ends = (edges == -1).nonzero()
        # nonzero() lists by channel, then time, so the i-th start and i-th end bound the same run.
        lengths = ends[:, 1] - starts[:, 1]
        long_enough = lengths >= min_samples
        runs += int(long_enough.sum())
        samples += int(lengths[long_enough].sum())
    return runs, samples


def dc_offset_dbfs(audio: torch.Tensor) -> float:
    """The largest channel mean of ``audio`` ``(channels, samples)`` in dBFS (0.1 reads -20 dBFS)."""
    return _db(float(audio.double().mean(dim=-1).abs().max()))


def dual_mono_difference_db(audio: torch.Tensor) -> float | None:
    """Peak of left minus right relative to the stem's peak, in dB (``-inf`` when identical); None for mono."""
    if audio.shape[0] != 2:
        return None
    peak = float(audio.abs().max())
    if peak == 0:
        return None
    return _db(float((audio[0] - audio[1]).abs().max()) / peak)


def leading_silence_s(audio: torch.Tensor, sample_rate: int, *, level_dbfs: float = ONSET_LEVEL_DBFS) -> float:
    """Seconds before the first sample of ``audio`` ``(channels, samples)`` above ``level_dbfs``
    (the whole length when none is)."""
    above = (audio.abs() > 10 ** (level_dbfs / 20)).any(dim=0).nonzero()
    first = int(above[0]) if len(above) else audio.shape[-1]
    return first / sample_rate


def decimated_mono(audio: torch.Tensor) -> torch.Tensor:
    """The channel average of ``audio`` ``(channels, samples)`` averaged over blocks of
    :data:`CORRELATION_DECIMATION` samples: float32 ``(samples // D,)``."""
    mono = audio.double().mean(dim=0)
    usable = mono.shape[-1] // CORRELATION_DECIMATION * CORRELATION_DECIMATION
    return mono[:usable].reshape(-1, CORRELATION_DECIMATION).mean(dim=1).float()


def gram_matrix(rows: Sequence[torch.Tensor], *, chunk: int = 1 << 16) -> torch.Tensor:
    """Inner products ``(n, n)`` float64 of 1-D signals, the shorter ones taken as zero past their end;
    summed over chunks of ``chunk`` samples, so that only ``(n, chunk)`` of them is ever stacked."""
    length = max(len(row) for row in rows)
    gram = torch.zeros(len(rows), len(rows), dtype=torch.float64)
    for start in range(0, length, chunk):
        width = min(chunk, length - start)
        pieces = [row[start:start + width].double() for row in rows]
        block = torch.stack([torch.nn.functional.pad(piece, (0, width - len(piece))) for piece in pieces])
        gram += block @ block.T
    return gram


def correlations(gram: torch.Tensor) -> torch.Tensor:
    """Pairwise correlation coefficients ``(n, n)`` from a Gram matrix; 0 where a signal is silent."""
    norms = gram.diagonal().sqrt()
    outer = norms[:, None] * norms[None, :]
    return torch.where(outer > 0, gram / outer.clamp_min(1e-300), torch.zeros_like(gram))


def best_lag_correlation(a: torch.Tensor, b: torch.Tensor) -> tuple[float, int]:
    """The largest correlation of 1-D ``a`` with ``b`` delayed by any whole number of samples, and that delay
    (positive: ``b`` lags ``a``), by FFT; each normalized by its whole energy, so a short overlap scores low.
    0 when either is silent."""
    length = max(len(a), len(b))
    energy = float(a.double().norm() * b.double().norm())
    if energy == 0:
        return 0.0, 0
    size = 2 * length
    spectrum = torch.fft.rfft(a.double(), size).conj() * torch.fft.rfft(b.double(), size)
    cross = torch.fft.irfft(spectrum, size)
    index = int(cross.argmax())
    return float(cross[index]) / energy, index if index < length else index - size


def coarse(mono: torch.Tensor) -> torch.Tensor:
    """A :func:`decimated_mono` averaged again over blocks of :data:`LAG_DECIMATION`: the rate at which
    lags are searched."""
    usable = len(mono) // LAG_DECIMATION * LAG_DECIMATION
    return mono[:usable].double().reshape(-1, LAG_DECIMATION).mean(dim=1)


def correlation_with_the_rest(monos: Sequence[torch.Tensor]) -> list[tuple[float, int]]:
    """Each 1-D signal's :func:`best_lag_correlation` with the sum of all the others (zero-padded to the
    longest), searched on their :func:`coarse` forms; the lags are in coarse samples."""
    rows = [coarse(mono) for mono in monos]
    length = max(len(row) for row in rows)
    rows = [torch.nn.functional.pad(row, (0, length - len(row))) for row in rows]
    total = torch.stack(rows).sum(dim=0)
    return [best_lag_correlation(row, total - row) for row in rows]


def _listed(items: Sequence[str]) -> str:
    """The first :data:`LISTED` items, and how many more."""
    shown = ", ".join(items[:LISTED])
    return f"{shown} and {len(items) - LISTED} more" if len(items) > LISTED else shown


def _format_s(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}" if seconds >= 60 else f"{seconds:.1f} s"


@dataclass(frozen=True)
class StemScan:
    """What preflight keeps of one stem after reading it in full: its measurements and its
    :func:`decimated_mono` (so that a session's audio need not be held all at once)."""

    duration_s: float
    peak_dbfs: float
    clipped_runs: int
    clipped_samples: int
    dc_offset_dbfs: float
    dual_mono_difference_db: float | None
    leading_silence_s: float
    mono: torch.Tensor


def scan_stem(audio: torch.Tensor, sample_rate: int) -> StemScan:
    """Measure one stem ``(channels, samples)`` at ``sample_rate`` for :func:`findings_from_scans`."""
    runs, clipped = clipped_runs(audio)
    return StemScan(
        duration_s=audio.shape[-1] / sample_rate, peak_dbfs=peak_dbfs(audio), clipped_runs=runs,
        clipped_samples=clipped, dc_offset_dbfs=dc_offset_dbfs(audio),
        dual_mono_difference_db=dual_mono_difference_db(audio),
        leading_silence_s=leading_silence_s(audio, sample_rate), mono=decimated_mono(audio),
    )


def _stem_findings(index: int, name: str, scan: StemScan) -> list[Finding]:
    peak = scan.peak_dbfs
    if peak < SILENCE_PEAK_DBFS:
        return [Finding(
            "silent", "info", f"{name} is silent: it is left out of the mix. Delete it if it is not meant to be there.",
            (index,), "delete_stem", index, {"peak_dbfs": max(peak, -200.0)})]
    findings = []
    if peak < NEAR_SILENT_PEAK_DBFS:
        findings.append(Finding(
            "near_silent", "warning", f"{name} is nearly silent (peak {peak:.0f} dBFS): check that it is the right "
            "file; the mix will raise it to the level of the others, noise and all.", (index,),
            values={"peak_dbfs": peak}))
    if scan.clipped_runs:
        runs = scan.clipped_runs
        findings.append(Finding(
            "clipping", "warning", f"{name} is clipped: {scan.clipped_samples} samples at full scale in {runs} "
            f"{'place' if runs == 1 else 'places'}. Mixing cannot undo it; export it again with less gain if you can.",
            (index,), values={"clipped_runs": runs, "clipped_samples": scan.clipped_samples}))
    if scan.dc_offset_dbfs > DC_OFFSET_MAX_DBFS:
        findings.append(Finding(
            "dc_offset", "warning", f"{name} has a DC offset of {scan.dc_offset_dbfs:.1f} dBFS: a constant shift that "
            "carries no sound and takes headroom. Removing it changes nothing you can hear.", (index,), "remove_dc",
            index, {"dc_offset_dbfs": scan.dc_offset_dbfs}))
    difference = scan.dual_mono_difference_db
    if difference is not None and difference < DUAL_MONO_DIFFERENCE_DB:
        shown = "identical" if difference == -math.inf else f"the same to {-difference:.0f} dB"
        findings.append(Finding(
            "dual_mono", "info", f"{name} is stereo, but its left and right are {shown}: mono twice. Folded to "
            "mono, the mix can pan it.", (index,), "fold_to_mono", index,
            {"difference_db": max(difference, -200.0)}))
    return findings


def _length_findings(names: Sequence[str], scans: Sequence[StemScan]) -> list[Finding]:
    durations_s = [scan.duration_s for scan in scans]
    longest = max(range(len(scans)), key=durations_s.__getitem__)
    short = [i for i, d in enumerate(durations_s) if durations_s[longest] - d > LENGTH_DIFFERENCE_S]
    findings = []
    if short:
        listed = _listed([f"{names[i]} ({_format_s(durations_s[i])})" for i in short])
        findings.append(Finding(
            "length", "warning", f"Stems differ in length: the longest, {names[longest]}, lasts "
            f"{_format_s(durations_s[longest])}; {listed}. Shorter stems get silence at their end, so check that "
            "they were exported from the same start.", tuple(short),
            values={"longest_s": durations_s[longest]}))
    late = [i for i, scan in enumerate(scans) if LATE_START_S < scan.leading_silence_s < scan.duration_s]
    if late and len(scans) > 1:
        listed = _listed([f"{names[i]} after {_format_s(scans[i].leading_silence_s)}" for i in late])
        findings.append(Finding(
            "start_offset", "info", f"Some stems begin with silence: {listed}. Normal for parts that enter later; "
            "if one should play from the start, it was exported from a different start point.", tuple(late),
            values={f"start_s_{i}": scans[i].leading_silence_s for i in late}))
    return findings


def _rate_findings(names: Sequence[str], rates_hz: Sequence[int], sample_rate: int) -> list[Finding]:
    distinct = sorted(set(rates_hz))
    if len(distinct) < 2:
        return []
    counts = ", ".join(f"{rate / 1000:g} kHz ({rates_hz.count(rate)})" for rate in distinct)
    odd = min(distinct, key=rates_hz.count)
    odd_tracks = tuple(i for i, rate in enumerate(rates_hz) if rate == odd)
    lowest = distinct[0]
    bandwidth = (f" A file at {lowest / 1000:g} kHz holds nothing above {lowest / 2000:g} kHz: no resampling brings "
                 "its top end back." if lowest < sample_rate else "")
    return [Finding(
        "sample_rate", "warning", f"The stems come at different sample rates: {counts}; they are all resampled to "
        f"{sample_rate / 1000:g} kHz. Stems of one song usually share one rate: check that "
        f"{_listed([names[i] for i in odd_tracks])} came from the same export.{bandwidth}", odd_tracks,
        values={f"sample_rate_hz_{i}": float(rate) for i, rate in enumerate(rates_hz)})]


def _pair_finding(names: Sequence[str], i: int, j: int, r: float) -> Finding | None:
    if r >= DUPLICATE_CORRELATION:
        return Finding(
            "duplicate", "problem", f"{names[j]} is a copy of {names[i]} (correlation {r:.2f}): together they play "
            f"twice as loud. Delete {names[j]} unless you doubled it on purpose.", (i, j), "delete_stem", j,
            {"correlation": r})
    if r <= INVERTED_CORRELATION:
        return Finding(
            "inverted_duplicate", "problem", f"{names[j]} is {names[i]} with its polarity flipped (correlation "
            f"{r:.2f}): together they cancel out. Delete {names[j]}.", (i, j), "delete_stem", j, {"correlation": r})
    if r <= OPPOSED_CORRELATION:
        return Finding(
            "opposed_polarity", "info", f"{names[i]} and {names[j]} are largely in opposite polarity (correlation "
            f"{r:.2f}), like two microphones on either side of a drum. If they sound thin together, flip one's "
            "polarity in your recording software.", (i, j), values={"correlation": r})
    return None


def _offset_text(lag: int, sample_rate: int) -> tuple[str, float]:
    """The words for a lag in coarse samples (none under 0.1 s), and the offset in seconds, unsigned."""
    offset_s = abs(lag) * CORRELATION_DECIMATION * LAG_DECIMATION / sample_rate
    return (f" once shifted by {offset_s:.1f} s" if offset_s >= 0.1 else ""), offset_s


def _correlation_findings(names: Sequence[str], scans: Sequence[StemScan], reference: StemScan | None,
                          sample_rate: int) -> list[Finding]:
    count = len(scans)
    correlation = correlations(gram_matrix([scan.mono for scan in scans]))
    findings, removed = [], set()
    for j in range(count):
        for i in range(j):
            finding = None if i in removed else _pair_finding(names, i, j, float(correlation[i, j]))
            if finding is not None:
                findings.append(finding)
                if finding.fix:
                    removed.add(j)
                    break
    # A full mix also raises every other stem's correlation with "the rest", which contains it (Caesium's
    # stems reach 0.56 beside its master's 0.70, 0.21 at most without it): so only the best one is taken,
    # and the rest measured again without it. With two stems the rest is the other stem: a duplicate.
    candidates = [i for i in range(count) if i not in removed]
    while len(candidates) > 2:
        rest = correlation_with_the_rest([scans[i].mono for i in candidates])
        best = max(range(len(candidates)), key=lambda k: rest[k][0])
        r, lag = rest[best]
        if r < FULL_MIX_CORRELATION:
            break
        i = candidates.pop(best)
        offset, offset_s = _offset_text(lag, sample_rate)
        findings.append(Finding(
            "full_mix", "problem", f"{names[i]} sounds like the whole song: it correlates {r:.2f} with the sum of the "
            f"other stems{offset}. A full mix among the stems doubles everything; delete it.", (i,), "delete_stem",
            i, {"correlation": r, "offset_s": offset_s}))
        removed.add(i)
    if reference is not None:
        song = coarse(reference.mono)
        for i in range(count):
            r, lag = best_lag_correlation(song, coarse(scans[i].mono))
            if i not in removed and r >= FULL_MIX_CORRELATION:
                offset, offset_s = _offset_text(lag, sample_rate)
                findings.append(Finding(
                    "is_reference", "problem", f"{names[i]} is the reference song itself (correlation {r:.2f}"
                    f"{offset}): delete it from the stems.", (i,), "delete_stem", i,
                    {"correlation": r, "offset_s": offset_s}))
    return findings


_SEVERITY_ORDER = {"problem": 0, "warning": 1, "info": 2}


def findings_from_scans(scans: Sequence[StemScan], *, names: Sequence[str], sample_rate: int,
                        source_sample_rates_hz: Sequence[int] | None = None,
                        reference: StemScan | None = None) -> list[Finding]:
    """Every finding about a session from its stems' scans (:func:`scan_stem`), the most serious first.

    ``names``: how to call each stem in the messages (its file name). ``source_sample_rates_hz``: each
    file's own rate before resampling to ``sample_rate``. ``reference``: the reference song's scan, to
    find a stem that is the reference itself.
    """
    if len(scans) != len(names):
        raise ValueError(f"expected as many names ({len(names)}) as stems ({len(scans)})")
    if not scans:
        return []
    findings = []
    for index, (name, scan) in enumerate(zip(names, scans, strict=True)):
        findings += _stem_findings(index, name, scan)
    findings += _length_findings(names, scans)
    if source_sample_rates_hz is not None:
        findings += _rate_findings(names, list(source_sample_rates_hz), sample_rate)
    findings += _correlation_findings(names, scans, reference, sample_rate)
    return sorted(findings, key=lambda finding: _SEVERITY_ORDER[finding.severity])


def preflight(stems: Sequence[torch.Tensor], *, names: Sequence[str], sample_rate: int,
              source_sample_rates_hz: Sequence[int] | None = None,
              reference: torch.Tensor | None = None) -> list[Finding]:
    """:func:`findings_from_scans` of ``stems`` (``(channels, samples)`` at ``sample_rate``, as decoded, not
    padded: their lengths are compared) and of the ``reference`` ``(channels, samples)``."""
    return findings_from_scans(
        [scan_stem(audio, sample_rate) for audio in stems], names=names, sample_rate=sample_rate,
        source_sample_rates_hz=source_sample_rates_hz,
        reference=scan_stem(reference, sample_rate) if reference is not None else None,
    )


def apply_fix(audio: torch.Tensor, fix: str) -> torch.Tensor:
    """``audio`` ``(channels, samples)`` with an audio fix applied: ``remove_dc`` (same shape, each channel's
    mean subtracted) or ``fold_to_mono`` (``(1, samples)``, the channels averaged). Raises ValueError for any
    other fix, and for ``fold_to_mono`` on a mono stem."""
    if fix == "remove_dc":
        return (audio.double() - audio.double().mean(dim=-1, keepdim=True)).to(audio.dtype)
    if fix == "fold_to_mono":
        if audio.shape[0] != 2:
            raise ValueError("only a stereo stem can be folded to mono")
        return audio.mean(dim=0, keepdim=True)
    raise ValueError(f"unknown audio fix {fix!r}; use one of {', '.join(AUDIO_FIXES)}")
