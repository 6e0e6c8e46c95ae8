"""Balance from a time-aligned reference: known gains, pans and offsets are recovered."""
import pytest
import torch

from mixing.aligned import ALIGNED_THRESHOLD, aligned_gains, find_alignment
from mixing.balance import _panned_levels_db, pin_levels
from mixing.dsp.eq import eq_param_names, parametric_eq_iir
from mixing.dsp.pan import pan_gains
from mixing.params import TRACK_SPECS, MixParams

SAMPLE_RATE = 44100
GAINS_DB = [-3.0, 4.0, 0.0, -6.0]
PANS_PCT = [-40.0, 20.0, 0.0, 50.0]


def _tracks(seconds: int = 8) -> list[torch.Tensor]:
    """Three mono noises that come and go second by second, and one stereo noise."""
    generator = torch.Generator().manual_seed(0)
    samples = SAMPLE_RATE * seconds
    mono = [torch.randn(1, samples, generator=generator)
            * torch.rand(1, seconds, generator=generator).repeat_interleave(SAMPLE_RATE, dim=1) for _ in range(3)]
    return [*mono, torch.randn(2, samples, generator=generator)]


def _expected_gains(tracks) -> torch.Tensor:
    return torch.stack([pan_gains(torch.tensor([pan_pct]), track.shape[0])[0] * 10.0 ** (gain_db / 20.0)
                        for track, gain_db, pan_pct in zip(tracks, GAINS_DB, PANS_PCT, strict=True)])


def _mix(tracks, gains: torch.Tensor, lead_samples: int) -> torch.Tensor:
    mix = sum(track.expand(2, -1) * gain[:, None] for track, gain in zip(tracks, gains, strict=True))
    return torch.nn.functional.pad(mix, (lead_samples, 0))


def test_known_gains_and_pans_are_recovered_within_a_tenth_of_a_db():
    tracks = _tracks()
    expected = _expected_gains(tracks)
    reference = _mix(tracks, expected, 1234)
    alignment = find_alignment(sum(track.expand(2, -1) for track in tracks), reference, SAMPLE_RATE)
    assert alignment.aligned and alignment.offset_samples == 1234
    recovered = aligned_gains(tracks, reference, SAMPLE_RATE, alignment.offset_samples)
    error_db = 20.0 * torch.log10(recovered / expected)
    # Up to the one factor the master's level leaves free, here 1 (no master gain).
    assert error_db.abs().max() < 0.1


def _shelved(track: torch.Tensor, band: str, gain_db: float) -> torch.Tensor:
    """``track`` through the console's EQ, flat but for one shelf at 1 kHz (``band``: low_shelf or high_shelf)."""
    eq = {name: TRACK_SPECS[name].default for name in eq_param_names()}
    eq.update({f"eq_{band}_gain_db": gain_db, f"eq_{band}_freq_hz": 1000.0})
    return parametric_eq_iir(track[None], SAMPLE_RATE, {name: torch.tensor([value]) for name, value in eq.items()})[0]


def test_tracks_equalised_one_by_one_are_read_at_the_level_of_their_part_of_the_reference():
    tracks = _tracks()
    gains = _expected_gains(tracks)
    # Two of the four tracks equalised, differently: no curve shared by all tracks explains them.
    shaped = [_shelved(tracks[0], "high_shelf", 6.0), tracks[1], _shelved(tracks[2], "high_shelf", -6.0), tracks[3]]
    parts = [track.expand(2, -1) * gain[:, None] for track, gain in zip(shaped, gains, strict=True)]
    recovered = aligned_gains(tracks, sum(parts), SAMPLE_RATE, 0)
    # Each part's power in each channel against its track's: the gain the part holds over the whole spectrum.
    expected = torch.stack([(part.square().mean(dim=-1) / track.expand(2, -1).square().mean(dim=-1)).sqrt()
                            for part, track in zip(parts, tracks, strict=True)])
    error_db = 20.0 * torch.log10(recovered / expected)
    assert error_db.abs().max() < 0.1
    # The shelves moved those two tracks' levels by whole decibels: the test would see a curve that took them.
    assert (20.0 * torch.log10(expected / gains))[[0, 2]].abs().min() > 2.0


def test_a_reference_cut_from_later_in_the_song_gives_a_negative_offset():
    tracks = _tracks()
    reference = _mix(tracks, _expected_gains(tracks), 0)[:, 2 * SAMPLE_RATE + 500:]
    alignment = find_alignment(sum(track.expand(2, -1) for track in tracks), reference, SAMPLE_RATE)
    assert alignment.aligned and alignment.offset_samples == -(2 * SAMPLE_RATE + 500)


def test_an_unrelated_reference_is_not_aligned():
    tracks = _tracks()
    unrelated = torch.randn(2, SAMPLE_RATE * 10, generator=torch.Generator().manual_seed(1))
    alignment = find_alignment(sum(track.expand(2, -1) for track in tracks), unrelated, SAMPLE_RATE)
    assert not alignment.aligned and alignment.peak < ALIGNED_THRESHOLD / 2


def test_pinned_levels_reach_their_targets_through_an_engaged_compressor():
    tracks = [0.1 * track for track in _tracks(seconds=4)]  # about -20 dBFS RMS
    params = MixParams.default(len(tracks))
    params.tracks[1].update(comp_ratio=4.0, comp_threshold_db=-24.0)  # moves its level by less than its fader
    targets_db = [-20.0, -16.0, -26.0, -18.0]
    pinned = pin_levels(params, tracks, targets_db, SAMPLE_RATE)
    levels_db = _panned_levels_db(pinned, tracks, SAMPLE_RATE, True, torch.device("cpu"))
    # Up to the one shared offset: the differences between the tracks are the targets'.
    offsets_db = [level - target for level, target in zip(levels_db, targets_db, strict=True)]
    assert max(offsets_db) - min(offsets_db) < 0.2
    assert pinned.tracks[1]["comp_ratio"] == 4.0 and params.tracks[1]["gain_db"] == 0.0  # a copy, strips kept


def test_pinning_moves_each_compressor_threshold_with_its_fader_so_a_6_db_move_is_6_db():
    tracks = [0.1 * track for track in _tracks(seconds=4)]  # about -20 dBFS RMS
    params = MixParams.default(len(tracks))
    for row in params.tracks:
        row.update(comp_ratio=4.0, comp_threshold_db=-30.0)  # engaged on every track
    levels_db = _panned_levels_db(params, tracks, SAMPLE_RATE, True, torch.device("cpu"))
    # Track 1 asked 6 dB louder against the others: relative to their mean, +4.5 dB for it and -1.5 dB for each other.
    pinned = pin_levels(params, tracks, [level + (6.0 if index == 1 else 0.0) for index, level in
                                         enumerate(levels_db)], SAMPLE_RATE)
    moves_db = [row["gain_db"] for row in pinned.tracks]
    assert moves_db == pytest.approx([-1.5, 4.5, -1.5, -1.5], abs=0.05)
    assert [row["comp_threshold_db"] + 30.0 for row in pinned.tracks] == pytest.approx(moves_db, abs=1e-9)


def test_pinning_runs_the_strips_again_only_where_a_threshold_could_not_follow_its_fader():
    tracks = [0.1 * track for track in _tracks(seconds=4)]  # about -20 dBFS RMS
    params = MixParams.default(len(tracks))
    for row in params.tracks:
        row.update(comp_ratio=4.0, comp_threshold_db=-30.0)
    params.tracks[2].update(comp_threshold_db=-1.0)  # a 6 dB raise takes it past 0 dB, the end of its range
    measured: list[list[int]] = []

    def levels_db(candidate, positions):
        measured.append(list(positions))
        return _panned_levels_db(candidate, tracks, SAMPLE_RATE, True, torch.device("cpu"), positions=positions)

    start_db = _panned_levels_db(params, tracks, SAMPLE_RATE, True, torch.device("cpu"))
    targets_db = [level + (6.0 if index == 2 else 0.0) for index, level in enumerate(start_db)]
    pinned = pin_levels(params, tracks, targets_db, SAMPLE_RATE, measure_levels_db=levels_db)
    assert measured[0] == [0, 1, 2, 3] and all(positions == [2] for positions in measured[1:]) and len(measured) > 1
    levels = _panned_levels_db(pinned, tracks, SAMPLE_RATE, True, torch.device("cpu"))
    offsets_db = [level - target for level, target in zip(levels, targets_db, strict=True)]
    assert max(offsets_db) - min(offsets_db) < 0.1
