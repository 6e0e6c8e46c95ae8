"""Analysis excerpts: loud, busy, non-overlapping windows, the same for every stem."""
import itertools

import torch

from mixing.excerpts import pick_windows, reference_excerpts, stem_excerpts

SAMPLE_RATE = 1000  # the choice of windows does not depend on the rate; a low one keeps the tests light


def _noise(seconds: float, level: float, seed: int) -> torch.Tensor:
    return torch.randn(int(seconds * SAMPLE_RATE), generator=torch.Generator().manual_seed(seed)) * level


def test_the_loud_section_is_chosen_over_quiet_ones():
    signal = torch.cat([_noise(20, 0.001, 1), _noise(10, 0.5, 2), _noise(20, 0.001, 3)])
    (start,) = pick_windows(signal, SAMPLE_RATE, count=1, window_s=8.0)
    assert start >= 20 * SAMPLE_RATE and start + 8 * SAMPLE_RATE <= 30 * SAMPLE_RATE


def test_windows_do_not_overlap_come_in_time_order_and_respect_the_count():
    starts = pick_windows(_noise(60, 0.1, 4), SAMPLE_RATE, count=3, window_s=5.0)
    assert len(starts) == 3 and starts == sorted(starts)
    assert all(b - a >= 5 * SAMPLE_RATE for a, b in itertools.pairwise(starts))


def test_windows_where_more_stems_play_are_preferred_to_louder_ones():
    # Stem 0 is loud alone in the first half; in the second half both stems play, more quietly.
    # The loudest windows hold stem 0 alone; the chosen one must let stem 1 be heard.
    loud_alone = torch.cat([_noise(30, 0.5, 5), _noise(30, 0.05, 6)])
    joins_later = torch.cat([torch.zeros(30 * SAMPLE_RATE), _noise(30, 0.05, 7)])
    excerpts, starts = stem_excerpts([loud_alone[None], joins_later[None]], SAMPLE_RATE, count=1, window_s=5.0)
    assert starts[0] + 5 * SAMPLE_RATE > 30 * SAMPLE_RATE
    assert excerpts[1].abs().max() > 0
    assert excerpts[0].shape == excerpts[1].shape == (1, 1, 5 * SAMPLE_RATE)
    torch.testing.assert_close(excerpts[1][0, 0], joins_later[starts[0] : starts[0] + 5 * SAMPLE_RATE])


def test_audio_shorter_than_a_window_is_one_whole_excerpt():
    reference = torch.stack([_noise(2, 0.1, 8), _noise(2, 0.1, 9)])
    excerpts = reference_excerpts(reference, SAMPLE_RATE, count=3, window_s=5.0)
    assert excerpts.shape == (1, 2, 2 * SAMPLE_RATE)
