"""The session engine: mute and solo, incremental re-renders, the baseline, analysis and exports."""
import copy
import io
import zipfile

import pytest
import soundfile as sf
import torch

from mixing import SAMPLE_RATE
from mixing.audio import Stems
from mixing.errors import MixingError
from mixing.loudness import integrated_loudness_lufs
from mixing.params import MixParams
from mixing.session import MixSession, mix_session
from tests.signals import noise, sine

DURATION_S = 1.0


def stems() -> Stems:
    """Three stems of distinct spectra and levels, mono and stereo."""
    audio = [sine(110.0, DURATION_S, amplitude=0.4), noise(DURATION_S, rms=0.05, channels=2, seed=1),
             sine(1000.0, DURATION_S, amplitude=0.1) + noise(DURATION_S, rms=0.01, seed=2)]
    return Stems(names=["Bass", "Pad", "Lead"], audio=audio, sample_rate=SAMPLE_RATE, warnings=[])


def only(session_stems: Stems, indices: list[int]) -> Stems:
    return Stems([session_stems.names[i] for i in indices], [session_stems.audio[i] for i in indices],
                 session_stems.sample_rate, [])


def edited(params: MixParams) -> MixParams:
    """Every track with its own fader, pan and EQ, and a master that compresses: strips and bus all work."""
    params = copy.deepcopy(params)
    for index, track in enumerate(params.tracks):
        track.update(gain_db=-3.0 * index, pan_pct=40.0 * (index - 1), eq_band2_gain_db=4.0 - 2.0 * index)
    params.master.update(master_comp_threshold_db=-20.0, master_comp_ratio=3.0)
    return params


def without(params: MixParams, indices: list[int]) -> MixParams:
    return MixParams([params.tracks[i] for i in indices], dict(params.master))


@pytest.fixture(scope="module")
def reference() -> torch.Tensor:
    """Stereo noise with some low end, about -19 LUFS."""
    return noise(DURATION_S, rms=0.05, channels=2, seed=7) + sine(80.0, DURATION_S, amplitude=0.1, channels=2)


def test_a_muted_track_contributes_nothing():
    params = edited(MixParams.default(3))
    muted = MixSession(stems(), device="cpu").render(params, muted=[1])
    alone = MixSession(only(stems(), [0, 2]), device="cpu").render(without(params, [0, 2]))
    torch.testing.assert_close(muted, alone, atol=1e-6, rtol=0.0)


def test_solo_plays_only_the_soloed_tracks_and_mute_silences_a_soloed_one():
    params = edited(MixParams.default(3))
    session = MixSession(stems(), device="cpu")
    soloed = session.render(params, solo=[0, 2], muted=[2])
    alone = MixSession(only(stems(), [0]), device="cpu").render(without(params, [0]))
    torch.testing.assert_close(soloed, alone, atol=1e-6, rtol=0.0)
    assert session.playing(solo=[0, 2], muted=[2]) == [True, False, False]
    assert session.playing() == [True, True, True]


def test_a_rerender_after_an_edit_equals_a_fresh_sessions_render():
    first = edited(MixParams.default(3))
    second = copy.deepcopy(first)
    second.tracks[1].update(gain_db=2.0, eq_band3_gain_db=-5.0)
    second.tracks[2]["pan_pct"] = -70.0
    session = MixSession(stems(), device="cpu")
    session.render(first, muted=[0])
    processed_before = session.renderer.processed_tracks
    rerendered = session.render(second)
    # Track 0 comes back unchanged from the kept strip; track 1's strip changed; track 2 only moved in the pan.
    assert session.renderer.processed_tracks - processed_before == 1
    torch.testing.assert_close(rerendered, MixSession(stems(), device="cpu").render(second), atol=1e-6, rtol=0.0)


def test_the_baseline_is_at_the_reference_loudness(reference):
    session = MixSession(stems(), reference, device="cpu")
    assert integrated_loudness_lufs(session.baseline, SAMPLE_RATE) == pytest.approx(
        integrated_loudness_lufs(reference, SAMPLE_RATE), abs=0.1)
    assert session.target_loudness_lufs == pytest.approx(integrated_loudness_lufs(reference, SAMPLE_RATE), abs=0.01)


def test_a_known_trim_gives_the_measured_trims_tracks():
    measured = MixSession(stems(), device="cpu")
    given = MixSession(stems(), device="cpu", trim_db=measured.trim_db)
    assert given.trim_db == measured.trim_db
    for ours, theirs in zip(given.tracks, measured.tracks, strict=True):
        torch.testing.assert_close(ours, theirs, atol=0.0, rtol=0.0)
    # Every stem was brought to the console's input level: equal loudness after the trim.
    loudness = [integrated_loudness_lufs(track, SAMPLE_RATE) for track in measured.tracks]
    assert max(loudness) - min(loudness) == pytest.approx(0.0, abs=0.01)


def test_mix_session_and_the_engine_render_given_params_alike(reference):
    params = edited(MixParams.default(3))
    result = mix_session(stems(), reference, params=params, device="cpu")
    session = MixSession(stems(), reference, device="cpu")
    assert result.method == "params" and result.trim_db == session.trim_db
    torch.testing.assert_close(result.audio, session.render(params), atol=0.0, rtol=0.0)
    anchor = session.mix(method="equal-loudness")
    assert anchor.params is None and anchor.trim_db == []
    torch.testing.assert_close(anchor.audio, session.baseline, atol=0.0, rtol=0.0)


def test_a_later_analysis_keeps_the_reference_and_baseline_and_moves_levels_with_the_faders(reference):
    session = MixSession(stems(), reference, device="cpu")
    first_params = edited(MixParams.default(3))
    second_params = copy.deepcopy(first_params)
    second_params.tracks[0]["gain_db"] -= 6.0
    first = session.analyse(session.render(first_params), first_params, track_ids=["a", "b", "c"])
    second = session.analyse(session.render(second_params), second_params, track_ids=["a", "b", "c"])
    assert second["features"]["reference"] == first["features"]["reference"]
    assert second["loudness_lufs"]["baseline"] == first["loudness_lufs"]["baseline"]
    assert [level["stem"] for level in second["track_levels"]] == ["a", "b", "c"]
    assert [level["name"] for level in second["track_levels"]] == ["Bass", "Pad", "Lead"]
    moved = [after["loudness_lufs"] - before["loudness_lufs"]
             for before, after in zip(first["track_levels"], second["track_levels"], strict=True)]
    assert moved == pytest.approx([-6.0, 0.0, 0.0], abs=1e-3)


def test_an_analysis_or_a_mix_to_match_needs_a_reference():
    session = MixSession(stems(), device="cpu")
    with pytest.raises(MixingError, match="reference"):
        session.analyse(session.baseline)
    with pytest.raises(MixingError, match="reference"):
        session.mix(method="fit")


def test_exports_write_each_format_within_one_step_of_its_resolution(tmp_path):
    session = MixSession(stems(), device="cpu")
    audio = session.baseline
    paths = session.export([(audio, tmp_path / "mix.wav", "wav24"), (audio, tmp_path / "mix.flac", "flac"),
                            (audio, tmp_path / "mix16.wav", "wav16")])
    assert paths == [tmp_path / "mix.wav", tmp_path / "mix.flac", tmp_path / "mix16.wav"]
    for path, subtype, step in zip(paths, ("PCM_24", "PCM_24", "PCM_16"), (2.0 ** -23, 2.0 ** -23, 2.0 ** -15),
                                   strict=True):
        data, sample_rate = sf.read(path, dtype="float32", always_2d=True)
        assert sample_rate == SAMPLE_RATE and sf.info(path).subtype == subtype
        # PCM_16 is dithered before rounding: within a few steps, not half of one.
        assert float((torch.from_numpy(data.T) - audio).abs().max()) <= 4 * step
    with pytest.raises(ValueError, match="export format"):
        session.export([(audio, tmp_path / "mix.mp3", "mp3")])


def with_silence() -> Stems:
    """stems() with a digitally silent stem second and a hiss at -100 dBFS last."""
    session = stems()
    hiss = noise(DURATION_S, rms=2e-6, seed=9).clamp(-1e-5, 1e-5)
    return Stems([session.names[0], "Empty", *session.names[1:], "Hiss"],
                 [session.audio[0], torch.zeros(1, session.audio[0].shape[-1]), *session.audio[1:], hiss],
                 SAMPLE_RATE, [])


def test_silent_stems_are_kept_with_defaults_and_left_out_of_the_automatic_mix(reference):
    options = dict(iterations=2, time_budget_s=None, checkpoint=None)
    session = MixSession(with_silence(), reference, device="cpu")
    assert session.silent == [False, True, False, False, True]
    mixed = session.mix(**options)
    sounding = MixSession(stems(), reference, device="cpu").mix(**options)
    # Exactly the mix of the stems that sound: no step weighed the silent ones.
    assert torch.equal(mixed.audio, sounding.audio)
    assert mixed.track_names == ["Bass", "Empty", "Pad", "Lead", "Hiss"]
    assert [mixed.params.tracks[i] for i in (0, 2, 3)] == sounding.params.tracks
    assert mixed.params.tracks[1] == mixed.params.tracks[4] == MixParams.default(1).tracks[0]
    assert mixed.params.master == sounding.params.master and len(mixed.trim_db) == 5


def test_a_silent_stem_never_plays_and_stays_out_of_the_baseline(reference):
    session = MixSession(with_silence(), reference, device="cpu")
    params = MixParams.default(5)
    params.tracks[4]["gain_db"] = 24.0  # the hiss, brought up: still not heard
    sounding = MixSession(stems(), reference, device="cpu")
    torch.testing.assert_close(session.render(params), sounding.render(MixParams.default(3)), atol=1e-6, rtol=0.0)
    assert session.playing(solo=[4]) == [False] * 5
    torch.testing.assert_close(session.baseline, sounding.baseline, atol=1e-6, rtol=0.0)


def test_a_session_of_silent_stems_has_nothing_to_mix(reference):
    silent = Stems(["A", "B"], [torch.zeros(1, SAMPLE_RATE), torch.zeros(2, SAMPLE_RATE)], SAMPLE_RATE, [])
    with pytest.raises(MixingError, match="Every stem is silent"):
        MixSession(silent, reference, device="cpu").mix(iterations=1, time_budget_s=None, checkpoint=None)


def test_the_stems_zip_holds_each_track_after_its_strip_at_the_sessions_rate(tmp_path):
    rate_hz = 48000
    audio = [sine(110.0, DURATION_S, sample_rate=rate_hz, amplitude=0.4),
             noise(DURATION_S, sample_rate=rate_hz, rms=0.05, channels=2, seed=1),
             torch.zeros(1, rate_hz)]
    session = MixSession(Stems(["Bass", "Pad/Left", "Quiet"], audio, rate_hz, []), device="cpu")
    params = edited(MixParams.default(3))
    session.render(params)
    path = session.export_stems_zip(params, tmp_path / "stems.zip")

    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["01 Bass.wav", "02 Pad_Left.wav", "03 Quiet.wav"]
        read = [sf.read(io.BytesIO(archive.read(name)), dtype="float32", always_2d=True) for name in archive.namelist()]
    assert {(rate, frames.shape) for frames, rate in read} == {(rate_hz, (rate_hz, 2))}
    # The stems add up to what the master bus takes in (24-bit files: within a few LSB), the silent one is silence.
    total = sum(torch.from_numpy(frames.T.copy()) for frames, _ in read)
    torch.testing.assert_close(total, session.renderer._sum.float(), atol=1e-5, rtol=0.0)
    assert not read[2][0].any()
    # The pan is in the stem: the Bass at -40 % pan is louder on the left.
    bass = read[0][0]
    assert (bass[:, 0] ** 2).mean() > 1.5 * (bass[:, 1] ** 2).mean()


def test_a_session_with_only_the_references_features_renders_and_analyses_as_with_its_audio(reference, tmp_path):
    params = edited(MixParams.default(3))
    with_audio = MixSession(stems(), reference, device="cpu")
    expected = with_audio.analyse(with_audio.render(params), params)
    torch.save(with_audio.reference_features(), tmp_path / "reference.pt")

    kept = torch.load(tmp_path / "reference.pt", weights_only=True)
    without_audio = MixSession(stems(), device="cpu", reference_features=kept)
    assert without_audio.reference is None
    assert without_audio.target_loudness_lufs == with_audio.target_loudness_lufs
    analysis = without_audio.analyse(without_audio.render(params), params)
    assert analysis["loudness_lufs"] == expected["loudness_lufs"]
    assert analysis["af_loss"] == expected["af_loss"]
    assert analysis["readings"] == expected["readings"]
    with pytest.raises(MixingError):
        MixSession(stems(), device="cpu").analyse(without_audio.render(params))


def test_a_session_trimming_in_place_holds_the_song_once_and_mixes_as_one_that_copies(reference):
    copying = MixSession(with_silence(), reference, device="cpu")
    owning_stems = with_silence()
    owning = MixSession(owning_stems, reference, device="cpu", trim_in_place=True)
    assert owning.silent == copying.silent  # judged before the audio is scaled
    assert owning.trim_db == copying.trim_db
    for kept, stem, trimmed in zip(owning.tracks, owning_stems.audio, copying.tracks, strict=True):
        assert kept is stem  # the stems' own tensors, scaled
        assert torch.equal(kept, trimmed)
    torch.testing.assert_close(owning.baseline, copying.baseline, atol=1e-6, rtol=0.0)
    params = edited(MixParams.default(5))
    assert torch.equal(owning.render(params), copying.render(params))


def test_a_time_aligned_reference_runs_each_strip_once_before_the_fit_and_once_after_it(monkeypatch):
    from mixing import balance
    from mixing.dsp import console

    seconds = 3.0
    audio = [sine(110.0, seconds, amplitude=0.4), noise(seconds, rms=0.05, channels=2, seed=1),
             sine(1000.0, seconds, amplitude=0.1) + noise(seconds, rms=0.01, seed=2)]
    session_stems = Stems(names=["Bass", "Pad", "Lead"], audio=audio, sample_rate=SAMPLE_RATE, warnings=[])
    own_mix = sum(track.expand(2, -1) * gain for track, gain in zip(audio, (1.0, 0.5, 2.0), strict=True))
    runs = []

    def counted(tracks, rows, *args, **kwargs):
        runs.append(len(tracks))
        yield from strips_before_pan(tracks, rows, *args, **kwargs)

    from mixing.dsp.stages import strips_before_pan
    monkeypatch.setattr(balance, "strips_before_pan", counted)
    monkeypatch.setattr(console, "strips_before_pan", counted)
    result = MixSession(session_stems, own_mix, device="cpu").mix(method="fit", iterations=2, time_budget_s=None)
    assert result.method == "expert+balance+fit+match"
    # The balance's fader moves and the pinning after the fit scale the strips' outputs instead of running them
    # again (no threshold here reaches the end of its range); matching's renders reuse the pinned strips.
    assert sum(runs) == 2 * len(audio)
