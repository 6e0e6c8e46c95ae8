"""Mix quality on real multitracks, judged by Diff-MST's conventions: AF loss, the side spectrum above 4 kHz, balance.

Songs are folders of real stems (``*_Stem_*`` audio files; a ``*_Master*`` file, where there is one, is the
artist's own mix). By default ``../shared/real/lithium`` and every folder in ``var/real/``; the album those
come from, Software-Entwicklungskit's *Everything is Free* (2024, CC0 1.0), is the public repository
``ichbinsoftware/everythingisremixed`` (commit 6a6fbe3), whose ``src/<n>.<Name>/*_mobile.m4a`` files are the
stems of seven songs (BENCHMARKS.md, real songs, says how var/real was filled). Each song is cut to the same
``--window-s`` window of its stems: the most energetic one of their sum (:func:`mixing.excerpts.pick_windows`).

Cases, per song ``i`` (its stems in that window):

- ``other``: toward song ``i + 1``'s mix (its master, else the plain sum of its stems) in its own window, the
  paper's setting: a reference of different music;
- ``own``: toward the plain sum of song ``i``'s own stems, a rough mix as a user would bring it: a case
  with ground truth, every track at unity gain. Besides the AF loss it reports the balance error: each
  track's level in the mix (after its strip and pan, :meth:`IncrementalRenderer.track_levels`) against its
  level in the sum, relative to the mean over the tracks (the loudness stage makes a common offset
  inaudible), RMS over the tracks that sound in the window, and that of the lead vocal (``VOX LEAD``);
- ``synthetic``: toward song ``i``'s stems mixed with seeded random gains (uniform within +-SYNTHETIC_GAIN_DB),
  pans (within +-SYNTHETIC_PAN_PCT) and a mild EQ per track (low shelf, one peak and high shelf, each within
  +-SYNTHETIC_EQ_DB), by the console's own pan law and EQ (:func:`synthetic_mix`): a rough mix that is not
  the plain sum, whose ground truth is exact, each track's level being that of its part of the sum. The
  same balance error as ``own``, against those levels; the seed is in the reference's name and the JSON.

Figures, at -16 LUFS each: the AF loss of eq. 8 with the bark spectrum as Diff-MST's code takes it
(:func:`mixing.losses.feature_metrics`, mid and side, 32768 points) and with the fitting's
(:data:`mixing.features.FIT_BARK`), each weighted term, and the error of the side and of the mid bark spectrum
over the bands centred at 4 kHz and above: mean and RMS of the band-wise difference in dB (positive: the mix
is louder there). Methods: ``equal-loudness`` (the anchor), ``auto``, and ``matchering``: the amateur's
alternative, the stems summed at equal loudness (the anchor's mix) mastered toward the reference by
Matchering 2.0 (PyPI ``matchering``, GPL-3.0: a benchmark dependency only, imported here when that method
runs). Prints figures; asserts nothing.

    .venv/bin/python bench/real.py --json var/bench/real.json
    .venv/bin/python bench/real.py --songs ../shared/real/lithium var/real/6.Caesium --window-s 20
    .venv/bin/python bench/real.py --cases own synthetic --methods auto --seed 0 --window-s 20
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soxr
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixing.audio import Stems, is_audio_filename, load_audio, load_stems  # noqa: E402
from mixing.dsp.eq import eq_param_names, parametric_eq_iir  # noqa: E402
from mixing.dsp.pan import pan  # noqa: E402
from mixing.excerpts import pick_windows  # noqa: E402
from mixing.features import FIT_BARK, PAPER_BARK, bark_band_centres_hz, bark_spectrum  # noqa: E402
from mixing.losses import PAPER_WEIGHTS, feature_metrics  # noqa: E402
from mixing.loudness import integrated_loudness_lufs, normalize_to_lufs  # noqa: E402
from mixing.params import TRACK_SPECS  # noqa: E402
from mixing.pipeline import as_stereo  # noqa: E402
from mixing.session import MixSession  # noqa: E402

METHODS = ("equal-loudness", "auto", "matchering")
CASE_TYPES = ("other", "own", "synthetic")
# The synthetic references' draws, each uniform within +- this: a rough mix's spread, not a producer's.
SYNTHETIC_GAIN_DB = 6.0
SYNTHETIC_PAN_PCT = 60.0
SYNTHETIC_EQ_DB = 3.0
COMPARE_LUFS = -16.0
HIGH_MIN_HZ = 4000.0
DEFAULT_SONGS = [ROOT.parent / "shared" / "real" / "lithium", *sorted((ROOT / "var" / "real").glob("*"))]


@dataclass
class Song:
    """A song's stems in its window, and its mix in that window (master, else the sum of the stems)."""

    name: str
    stems: Stems
    mix: torch.Tensor  # (2, samples): the master, else the stem sum
    mix_source: str  # "master" or "stem sum"
    stem_sum: torch.Tensor  # (2, samples): the plain sum of the stems, the own case's reference
    window_start_s: float


@dataclass
class CaseResult:
    case_type: str
    song: str
    reference: str
    method: str
    wall_s: float | None = None
    ran: str = ""
    af_loss: float | None = None
    af_loss_fit_bark: float | None = None
    terms: dict[str, float] = field(default_factory=dict)
    side_high_mean_db: float | None = None
    side_high_rms_db: float | None = None
    mid_high_rms_db: float | None = None
    balance_rms_db: float | None = None
    lead_vocal_db: float | None = None
    tracks: int = 0
    seed: int | None = None  # the synthetic reference's
    track_errors_db: dict[str, float] = field(default_factory=dict)  # the balance error of each sounding track


@dataclass
class SyntheticMix:
    """A song's stems mixed with known random settings: ``audio`` (2, samples), the sum of the tracks' parts;
    per track its ``gain_db``, ``pan_pct`` and EQ gains ``eq_db`` (schema names), and ``levels_db``, the level of
    its part of the sum (mean square over both channels, as :meth:`IncrementalRenderer.track_levels` measures)."""

    audio: torch.Tensor
    gain_db: list[float]
    pan_pct: list[float]
    eq_db: list[dict[str, float]]
    levels_db: list[float]
    seed: int


def _stem_paths(folder: Path) -> tuple[list[Path], Path | None]:
    audio = sorted(p for p in folder.iterdir() if p.is_file() and is_audio_filename(p.name))
    stems = [p for p in audio if "_Stem_" in p.name] or [p for p in audio if "Master" not in p.name]
    masters = [p for p in audio if "_Master" in p.name]
    return stems, (masters[0] if masters else None)


def load_song(folder: Path, window_s: float) -> Song:
    """The stems of ``folder`` (decoded at 44.1 kHz, padded) in their loudest ``window_s`` window."""
    paths, master = _stem_paths(folder)
    stems = load_stems(paths)
    summed = sum(as_stereo(audio) for audio in stems.audio)
    window = min(round(window_s * stems.sample_rate), summed.shape[-1])
    start = pick_windows(summed.mean(dim=0), stems.sample_rate, count=1, window_s=window / stems.sample_rate,
                         activity=torch.stack([audio.mean(dim=0) for audio in stems.audio]))[0]
    cut = Stems(list(stems.names), [audio[:, start:start + window] for audio in stems.audio], stems.sample_rate,
                [])
    stem_sum = summed[:, start:start + window].contiguous()
    if master is not None:
        mix = as_stereo(load_audio(master))
        mix = torch.nn.functional.pad(mix, (0, max(0, start + window - mix.shape[-1])))[:, start:start + window]
        source = "master"
    else:
        mix, source = stem_sum, "stem sum"
    return Song(folder.name, cut, mix.contiguous(), source, stem_sum, start / stems.sample_rate)


def synthetic_mix(stems: Stems, seed: int) -> SyntheticMix:
    """``stems`` gained, equalised (the console's EQ: a low shelf, the band-2 peak at a random frequency, Q 1, and
    a high shelf) and panned (the console's pan law) with settings drawn from ``seed``, and summed."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand(1, generator=generator))

    audio = torch.zeros(2, stems.audio[0].shape[-1])
    mix = SyntheticMix(audio, [], [], [], [], seed)
    for track in stems.audio:
        gain_db = uniform(-SYNTHETIC_GAIN_DB, SYNTHETIC_GAIN_DB)
        pan_pct = uniform(-SYNTHETIC_PAN_PCT, SYNTHETIC_PAN_PCT)
        eq = {name: TRACK_SPECS[name].default for name in eq_param_names()}
        eq_db = {f"eq_{band}_gain_db": uniform(-SYNTHETIC_EQ_DB, SYNTHETIC_EQ_DB)
                 for band in ("low_shelf", "band2", "high_shelf")}
        eq.update(eq_db, eq_band2_freq_hz=200.0 * 20.0 ** uniform(0.0, 1.0), eq_band2_q=1.0)
        shaped = parametric_eq_iir(track[None] * 10.0 ** (gain_db / 20.0), stems.sample_rate,
                                   {name: torch.tensor([value]) for name, value in eq.items()})
        part = pan(shaped, stems.sample_rate, torch.tensor([pan_pct]))[0]
        audio += part
        mix.gain_db.append(gain_db)
        mix.pan_pct.append(pan_pct)
        mix.eq_db.append(eq_db | {"eq_band2_freq_hz": eq["eq_band2_freq_hz"]})
        mix.levels_db.append(10.0 * math.log10(float(part.double().square().mean()) + 1e-30))
    return mix


def matchering_master(target: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``target`` (2, samples) mastered toward ``reference`` (2, samples) by Matchering 2.0, as its own command line
    does it (24-bit WAV files in, 24-bit out, its default limiter): (2, samples)."""
    import matchering
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="bench-matchering-") as folder:
        paths = {name: Path(folder) / f"{name}.wav" for name in ("target", "reference", "result")}
        for name, audio in (("target", target), ("reference", reference)):
            sf.write(paths[name], audio.numpy().T, sample_rate, subtype="PCM_24")
        matchering.log(default_handler=lambda line: None)
        matchering.process(target=str(paths["target"]), reference=str(paths["reference"]),
                           results=[matchering.pcm24(str(paths["result"]))])
        data, rate = sf.read(paths["result"], dtype="float32", always_2d=True)
    if rate != sample_rate:
        # Matchering works and writes at 44.1 kHz whatever its input's rate (the real stems are 48 kHz).
        data = soxr.resample(data, rate, sample_rate, quality="HQ")
    return torch.from_numpy(np.ascontiguousarray(data.T))


def _at_compare_level(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    return normalize_to_lufs(audio.float(), sample_rate, COMPARE_LUFS)[0].unsqueeze(0)


def high_band_errors_db(mix: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> dict[str, float]:
    """Mid and side bark spectra (Diff-MST's) of ``mix`` against ``reference``, each (1, 2, samples) at one
    loudness, over the bands centred at HIGH_MIN_HZ and above: mean and RMS of the difference in dB."""
    high = torch.as_tensor(bark_band_centres_hz(sample_rate, PAPER_BARK.n_fft) >= HIGH_MIN_HZ)
    # The bark spectrum is a natural log of magnitudes: 20 / ln(10) turns a difference into dB.
    difference_db = (bark_spectrum(mix, sample_rate, convention=PAPER_BARK)
                     - bark_spectrum(reference, sample_rate, convention=PAPER_BARK))[0] * (20.0 / math.log(10.0))
    mid, side = difference_db[0, high], difference_db[1, high]
    return {"side_high_mean_db": float(side.mean()), "side_high_rms_db": float(side.pow(2).mean().sqrt()),
            "mid_high_rms_db": float(mid.pow(2).mean().sqrt())}


@dataclass
class BalanceError:
    """Per-track level differences of a mix from the truth, relative to their mean: ``rms_db`` over the tracks,
    the lead vocal's ``lead_vocal_db`` (None without one), and every track's in ``tracks_db``."""

    rms_db: float | None
    lead_vocal_db: float | None
    tracks_db: dict[str, float]


def _balance_summary(differences_db: dict[str, float]) -> BalanceError:
    if len(differences_db) < 2:
        return BalanceError(None, None, {})
    offset = statistics.fmean(differences_db.values())
    errors = {name: difference - offset for name, difference in differences_db.items()}
    lead = next((error for name, error in errors.items() if "VOX LEAD" in name.upper()), None)
    return BalanceError(math.sqrt(statistics.fmean(e * e for e in errors.values())), lead, errors)


def own_levels_db(stems: Stems) -> list[float]:
    """Each stem's level in the plain sum of the stems (a mono stem copied to both channels)."""
    return [10.0 * math.log10(float(as_stereo(audio).double().pow(2).mean()) + 1e-30) for audio in stems.audio]


def _sounding(stems: Stems) -> list[tuple[int, str, torch.Tensor]]:
    """(index, name, stereo audio) of the stems whose loudness can be measured in the window."""
    return [(index, name, as_stereo(audio)) for index, (name, audio) in enumerate(zip(stems.names, stems.audio,
                                                                                       strict=True))
            if math.isfinite(integrated_loudness_lufs(as_stereo(audio), stems.sample_rate))]


def balance_errors_db(session: MixSession, params, stems: Stems, truth_db: list[float]) -> BalanceError:
    """The balance error under ``params``: each sounding track's level in the mix against ``truth_db``, its level
    in the reference."""
    levels_db = session.renderer.track_levels(params)
    return _balance_summary({name: levels_db[index] - truth_db[index] for index, name, _ in _sounding(stems)})


def run_cases(songs: list[Song], methods=METHODS, case_types=CASE_TYPES, log=print, seed: int = 0,
              **mix_options) -> list[CaseResult]:
    """Every case type, song and method; see the module docstring. Song ``i``'s synthetic reference is drawn
    from ``seed + i``."""
    results = []
    for case_type in case_types:
        for index, song in enumerate(songs):
            reference_name, song_seed, truth_db = song.name, None, None
            if case_type == "other":
                other = songs[(index + 1) % len(songs)]
                reference_name, reference_mix = other.name, other.mix
            elif case_type == "own":
                reference_mix, truth_db = song.stem_sum, own_levels_db(song.stems)
            else:
                song_seed = seed + index
                synthetic = synthetic_mix(song.stems, song_seed)
                reference_name = f"{song.name} synthetic (seed {song_seed})"
                reference_mix, truth_db = synthetic.audio, synthetic.levels_db
            for method in methods:
                result = CaseResult(case_type, song.name, reference_name, method, tracks=len(song.stems.audio),
                                    seed=song_seed)
                session = MixSession(song.stems, reference_mix)
                began = time.perf_counter()
                if method == "matchering":
                    mixed = session.mix(method="equal-loudness")
                    mixed = dataclasses.replace(mixed, audio=matchering_master(mixed.audio, reference_mix,
                                                                               song.stems.sample_rate),
                                                method="equal-loudness+matchering")
                else:
                    mixed = session.mix(method=method, **mix_options)
                result.wall_s, result.ran = time.perf_counter() - began, mixed.method
                sample_rate = song.stems.sample_rate
                mix, target = _at_compare_level(mixed.audio, sample_rate), _at_compare_level(reference_mix, sample_rate)
                metrics = feature_metrics(mix, target, sample_rate)
                result.af_loss = metrics.pop("af_loss")
                result.terms = {name: PAPER_WEIGHTS[name] * value for name, value in metrics.items()}
                result.af_loss_fit_bark = feature_metrics(mix, target, sample_rate, bark=FIT_BARK)["af_loss"]
                for key, value in high_band_errors_db(mix, target, sample_rate).items():
                    setattr(result, key, value)
                if truth_db is not None:
                    # Equal loudness has no params: every track at the same loudness.
                    error = (_equal_loudness_balance(song.stems, truth_db) if mixed.params is None
                             else balance_errors_db(session, mixed.params, song.stems, truth_db))
                    result.balance_rms_db, result.lead_vocal_db = error.rms_db, error.lead_vocal_db
                    result.track_errors_db = error.tracks_db
                results.append(result)
                log(f"[{case_type}] {song.name} -> {reference_name} {method}: AF {result.af_loss:.4g} "
                    f"(fit bark {result.af_loss_fit_bark:.4g}), side >4 kHz {result.side_high_mean_db:+.1f} dB mean "
                    f"{result.side_high_rms_db:.1f} dB RMS, {result.wall_s:.1f} s"
                    + (f", balance {result.balance_rms_db:.2f} dB RMS" if result.balance_rms_db is not None else ""))
    return results


def _equal_loudness_balance(stems: Stems, truth_db: list[float]) -> BalanceError:
    """The balance error of the equal-loudness anchor: each track's loudness set equal, against ``truth_db``."""
    # Raised to a common loudness L, a track's level moves by L - loudness from its own level in the sum.
    own_db = own_levels_db(stems)
    return _balance_summary({name: own_db[index] - integrated_loudness_lufs(stereo, stems.sample_rate)
                             - truth_db[index] for index, name, stereo in _sounding(stems)})


def summarize(results: list[CaseResult]) -> dict:
    """Per case type and method: median AF and its ratio to equal-loudness's per case (median and worst)."""
    summary = {}
    anchor = {(r.case_type, r.song): r.af_loss for r in results if r.method == "equal-loudness"}
    for case_type in dict.fromkeys(r.case_type for r in results):
        for method in dict.fromkeys(r.method for r in results):
            rows = [r for r in results if r.case_type == case_type and r.method == method]
            ratios = [r.af_loss / anchor[(r.case_type, r.song)] for r in rows if anchor.get((r.case_type, r.song))]
            balance = [r.balance_rms_db for r in rows if r.balance_rms_db is not None]
            leads = [abs(r.lead_vocal_db) for r in rows if r.lead_vocal_db is not None]
            summary[f"{case_type}/{method}"] = {
                "cases": len(rows),
                "af_loss_median": statistics.median(r.af_loss for r in rows),
                "ratio_median": statistics.median(ratios) if ratios else None,
                "ratio_worst": max(ratios) if ratios else None,
                "side_high_rms_db_median": statistics.median(r.side_high_rms_db for r in rows),
                "side_high_mean_db_median": statistics.median(r.side_high_mean_db for r in rows),
                "balance_rms_db_median": statistics.median(balance) if balance else None,
                "balance_rms_db_worst": max(balance) if balance else None,
                "lead_vocal_abs_db_worst": max(leads) if leads else None,
            }
    return summary


def format_report(results: list[CaseResult], summary: dict) -> str:
    def ratio(value):
        return "-" if value is None else f"1/{1 / value:.3g}" if value < 1 else f"{value:.3g}x"

    lines = ["| Case | Song -> reference | Method | Tracks | AF (paper) | AF (fit bark) | side >4 kHz mean / RMS dB "
             "| mid >4 kHz RMS dB | balance RMS dB | lead vocal dB | wall s |", "|---" * 11 + "|"]
    for r in results:
        lines.append(f"| {r.case_type} | {r.song} -> {r.reference} | {r.method} | {r.tracks} | {r.af_loss:.4g} "
                     f"| {r.af_loss_fit_bark:.4g} | {r.side_high_mean_db:+.1f} / {r.side_high_rms_db:.1f} "
                     f"| {r.mid_high_rms_db:.1f} "
                     f"| {'-' if r.balance_rms_db is None else f'{r.balance_rms_db:.2f}'} "
                     f"| {'-' if r.lead_vocal_db is None else f'{r.lead_vocal_db:+.1f}'} | {r.wall_s:.1f} |")
    def db(value, sign=""):
        return "-" if value is None else f"{value:{sign}.2f}"

    lines += ["", "| Cases / method | n | AF median | / equal-loudness, median (worst) | side >4 kHz RMS dB, median "
                  "| balance RMS dB, median (worst) | lead vocal, worst abs dB |", "|---|---|---|---|---|---|---|"]
    for key, f in summary.items():
        lines.append(f"| {key} | {f['cases']} | {f['af_loss_median']:.4g} | {ratio(f['ratio_median'])} "
                     f"({ratio(f['ratio_worst'])}) | {f['side_high_rms_db_median']:.1f} "
                     f"| {db(f['balance_rms_db_median'])} ({db(f['balance_rms_db_worst'])}) "
                     f"| {db(f['lead_vocal_abs_db_worst'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", nargs="+", type=Path, default=DEFAULT_SONGS, help="song folders")
    parser.add_argument("--window-s", type=float, default=30.0, help="seconds of each song (default %(default)s)")
    parser.add_argument("--cases", nargs="+", choices=CASE_TYPES, default=list(CASE_TYPES))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--time-budget-s", type=float, default=20.0, help="auto's fit budget (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0, help="song i's synthetic reference is drawn from seed + i")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    folders = [folder for folder in args.songs if folder.is_dir()]
    if len(folders) < 2:
        parser.error(f"need at least two song folders; found {[str(f) for f in folders]}")
    began = time.perf_counter()
    songs = [load_song(folder, args.window_s) for folder in folders]
    print(f"{len(songs)} songs loaded in {time.perf_counter() - began:.0f} s: "
          + ", ".join(f"{s.name} ({len(s.stems.audio)} stems, {s.mix_source}, from {s.window_start_s:.0f} s)"
                      for s in songs), file=sys.stderr)
    results = run_cases(songs, methods=args.methods, case_types=args.cases,
                        log=lambda line: print(line, file=sys.stderr, flush=True),
                        seed=args.seed, time_budget_s=args.time_budget_s, iterations=args.iterations)
    summary = summarize(results)
    print(format_report(results, summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        config = {"songs": [str(f) for f in folders], "window_s": args.window_s, "time_budget_s": args.time_budget_s,
                  "iterations": args.iterations, "seed": args.seed,
                  "licence": "CC0 1.0 (Software-Entwicklungskit, Everything is Free)",
                  "source": "public repository ichbinsoftware/everythingisremixed, commit 6a6fbe3",
                  "windows_s": {s.name: s.window_start_s for s in songs}}
        args.json.write_text(json.dumps({"config": config, "summary": summary,
                                         "cases": [asdict(r) for r in results]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
