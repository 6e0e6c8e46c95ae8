"""The renderer's kept strip outputs, bounded by bytes: the least recently used go first, and an evicted track
is processed again to the same samples."""
import pytest
import torch

from mixing.dsp.console import IncrementalRenderer
from mixing.dsp.kept import (
    DEFAULT_KEPT_STRIPS_MAX_BYTES,
    KEPT_STRIPS_MAX_BYTES_ENV,
    BoundedAudioStore,
    kept_strips_max_bytes,
)
from tests.unit.test_console import SAMPLE_RATE, busy_params, tone_and_noise

FLOAT_BYTES = 4


def block(samples: int) -> torch.Tensor:
    """Mono audio of ``samples`` float32 samples: ``samples * 4`` bytes."""
    return torch.zeros(1, samples)


def test_the_store_evicts_the_least_recently_used_first():
    store = BoundedAudioStore(max_bytes=250 * FLOAT_BYTES)
    store.put("a", block(100))
    store.put("b", block(100))
    assert store.get("a") is not None  # now "b" is the least recently used
    store.put("c", block(100))
    assert "a" in store and "c" in store and "b" not in store
    assert store.nbytes == 200 * FLOAT_BYTES
    assert store.evictions == 1
    assert store.get("b") is None


def test_the_store_keeps_the_newest_entry_even_alone_over_its_bound():
    store = BoundedAudioStore(max_bytes=50 * FLOAT_BYTES)
    store.put("a", block(40))
    store.put("b", block(100))
    assert list(key for key in ("a", "b") if key in store) == ["b"]
    assert store.nbytes == 100 * FLOAT_BYTES


def test_the_store_counts_what_a_view_keeps_alive():
    store = BoundedAudioStore(max_bytes=1 << 20)
    whole = block(1000)
    store.put("half", whole[:, :500])
    assert store.nbytes == 1000 * FLOAT_BYTES
    store.put("half", block(10))  # replaced: the old entry's bytes are given back
    assert store.nbytes == 10 * FLOAT_BYTES
    store.discard("half")
    assert store.nbytes == 0 and len(store) == 0


def test_the_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(KEPT_STRIPS_MAX_BYTES_ENV, raising=False)
    assert kept_strips_max_bytes() == DEFAULT_KEPT_STRIPS_MAX_BYTES == 1 << 30
    monkeypatch.setenv(KEPT_STRIPS_MAX_BYTES_ENV, "12345")
    assert kept_strips_max_bytes() == 12345
    for bad in ("-1", "1.5", "a lot"):
        monkeypatch.setenv(KEPT_STRIPS_MAX_BYTES_ENV, bad)
        with pytest.raises(ValueError, match=KEPT_STRIPS_MAX_BYTES_ENV):
            kept_strips_max_bytes()


def tracks_and_one_track_bytes() -> tuple[list[torch.Tensor], int]:
    tracks = [tone_and_noise(channels, 1.0, seed) for seed, channels in enumerate([2, 1, 2, 2])]
    return tracks, tracks[0].numel() * FLOAT_BYTES


def test_a_bounded_renderer_renders_what_an_unbounded_one_renders_bit_for_bit():
    tracks, stereo_bytes = tracks_and_one_track_bytes()
    params = busy_params(len(tracks))
    unbounded = IncrementalRenderer(tracks, SAMPLE_RATE)
    bounded = IncrementalRenderer(tracks, SAMPLE_RATE, max_kept_bytes=stereo_bytes)
    assert torch.equal(bounded.render(params), unbounded.render(params))
    assert bounded.processed_tracks == unbounded.processed_tracks == len(tracks)
    assert bounded.kept_strip_bytes <= stereo_bytes  # one stereo track's output, the last made

    # A pan move and a mute need the audio of tracks whose outputs were evicted: they are processed again.
    params.tracks[0]["pan_pct"] = 80.0
    active = [True, True, False, True]
    assert torch.equal(bounded.render(params, active), unbounded.render(params, active))
    assert unbounded.processed_tracks == len(tracks)
    assert bounded.processed_tracks == len(tracks) + 2  # tracks 0 and 2, evicted, made again
    # Editing an evicted track takes its old audio out of the sum first, made again as it was.
    params.tracks[1]["gain_db"] = 4.0
    assert torch.equal(bounded.render(params), unbounded.render(params))
    fresh = IncrementalRenderer(tracks, SAMPLE_RATE).render(params)
    torch.testing.assert_close(bounded.render(params), fresh, atol=1e-6, rtol=0)


def test_strip_outputs_of_a_bounded_renderer_are_the_unbounded_ones():
    tracks, stereo_bytes = tracks_and_one_track_bytes()
    params = busy_params(len(tracks))
    unbounded = IncrementalRenderer(tracks, SAMPLE_RATE).strip_outputs(params)
    bounded_renderer = IncrementalRenderer(tracks, SAMPLE_RATE, max_kept_bytes=stereo_bytes)
    bounded = bounded_renderer.strip_outputs(params)
    assert len(bounded) == len(tracks)
    for index in (3, 0, 2, 1, -1):
        assert torch.equal(bounded[index], unbounded[index])
        assert bounded_renderer.kept_strip_bytes <= stereo_bytes
    with pytest.raises(IndexError):
        bounded[len(tracks)]
