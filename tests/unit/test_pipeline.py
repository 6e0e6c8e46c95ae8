"""The mixing pipeline: methods, progress, the controller fallback, inputs and presets."""
import json
import math
import zipfile

import pytest
import torch

from mixing import SAMPLE_RATE, pipeline
from mixing.audio import Stems
from mixing.controller import Controller, save_checkpoint, tiny_config
from mixing.dsp.limiter import true_peak_dbtp
from mixing.errors import CheckpointError, MixingError, PresetError, StemError
from mixing.fit import reference_loudness_lufs
from mixing.loudness import integrated_loudness_lufs
from mixing.params import MixParams
from mixing.pipeline import (
    STAGE_SPANS,
    as_stereo,
    load_reference,
    read_preset,
    stem_files,
)
from mixing.session import mix_session
from tests.signals import noise, sine, write_audio

DURATION_S = 3.0  # shorter than fitting's excerpts, so fitting works on one 3 s excerpt


def lowpassed_noise(seed: int, channels: int = 1, rms: float = 0.05) -> torch.Tensor:
    """Noise with most of its energy low: a running mean over 32 samples (a ~1.4 kHz lowpass)."""
    white = noise(DURATION_S, rms=rms, channels=channels, seed=seed)
    return torch.nn.functional.avg_pool1d(white.unsqueeze(0), 32, stride=1, padding=16)[0, :, : white.shape[-1]] * 4


def session() -> Stems:
    """Four stems of distinct spectra and levels, mono and stereo."""
    audio = [
        sine(55.0, DURATION_S, amplitude=0.6),
        sine(220.0, DURATION_S, amplitude=0.05) + lowpassed_noise(1) * 0.2,
        lowpassed_noise(2, channels=2),
        noise(DURATION_S, rms=0.01, seed=3),
    ]
    return Stems(names=["Kick", "Bass", "Keys", "Hats"], audio=audio, sample_rate=SAMPLE_RATE, warnings=[])


@pytest.fixture(scope="module")
def reference() -> torch.Tensor:
    """Stereo noise with some low end, about -17 LUFS: loud enough to need no heavy limiting."""
    return noise(DURATION_S, rms=0.05, channels=2, seed=7) + sine(80.0, DURATION_S, amplitude=0.1, channels=2)


@pytest.fixture(scope="module")
def fitted(reference, tmp_path_factory):
    """One automatic mix where no controller is installed, with every progress event it reported."""
    events = []
    missing = tmp_path_factory.mktemp("no-controller") / "controller.pt"
    # No time budget: the test must not depend on how busy the machine is.
    result = mix_session(session(), reference, method="auto", checkpoint=missing, iterations=2, time_budget_s=None,
                         progress=events.append, device="cpu")
    return result, events


def test_fit_mix_is_stereo_finite_and_under_the_ceiling(fitted):
    result, _ = fitted
    assert result.audio.shape == (2, round(DURATION_S * SAMPLE_RATE))
    assert torch.isfinite(result.audio).all()
    assert true_peak_dbtp(result.audio, SAMPLE_RATE) <= -1.0 + 1e-3
    assert result.true_peak_dbtp == pytest.approx(true_peak_dbtp(result.audio, SAMPLE_RATE))


def test_fit_mix_lands_at_the_reference_loudness(fitted, reference):
    result, _ = fitted
    target_lufs = reference_loudness_lufs(reference, SAMPLE_RATE)
    assert result.params.master["master_loudness_lufs"] == pytest.approx(target_lufs)
    # The true-peak ceiling may only take a little off; the limiter drive matching chose may add at most itself.
    assert result.loudness_lufs == pytest.approx(integrated_loudness_lufs(result.audio, SAMPLE_RATE))
    drive_db = result.params.master["master_limiter_drive_db"]
    assert target_lufs - 1.0 <= result.loudness_lufs <= target_lufs + drive_db + 0.1


def test_auto_without_a_controller_fits_from_the_expert_start_and_reports_stage_timings(fitted):
    result, _ = fitted
    assert result.method == "expert+balance+fit+match"
    assert result.warnings == []
    assert result.fit is not None and result.fit.iterations == 2
    assert result.fit.loss <= result.fit.start_loss
    assert list(result.timings_s) == ["analysing", "predicting", "fitting", "matching", "measuring"]
    assert result.match is not None and result.match.loss <= result.match.start_loss
    assert len(result.trim_db) == 4
    preset = result.preset()
    assert [track["name"] for track in preset["tracks"]] == ["Kick", "Bass", "Keys", "Hats"]
    assert MixParams.from_preset(json.loads(json.dumps(preset))) == result.params


def test_progress_is_monotonic_in_stage_order_and_ends_at_one(fitted):
    _, events = fitted
    overall = [event["progress"] for event in events]
    assert overall == sorted(overall)
    assert overall[-1] == 1.0
    assert all(set(event) == {"stage", "progress", "detail"} for event in events)
    order = list(STAGE_SPANS)
    stages = [order.index(event["stage"]) for event in events]
    assert stages == sorted(stages)
    for event in events:
        low, high = STAGE_SPANS[event["stage"]]
        assert low <= event["progress"] <= high
    assert any(event["stage"] == "fitting" and "iteration 1" in event["detail"] for event in events)


def test_given_params_are_rendered_as_they_are_without_a_reference():
    params = MixParams.default(4)
    params.master["master_loudness_lufs"] = -20.0
    params.tracks[0]["gain_db"] = -12.0
    first = mix_session(session(), None, params=params, device="cpu")
    again = mix_session(session(), None, params=params, device="cpu")
    assert first.method == "params" and first.fit is None
    assert first.loudness_lufs == pytest.approx(-20.0, abs=0.3)
    assert torch.equal(first.audio, again.audio)
    assert list(first.timings_s) == ["analysing", "rendering", "measuring"]


def test_params_for_another_track_count_are_refused():
    with pytest.raises(PresetError, match="3 tracks; the session has 4"):
        mix_session(session(), None, params=MixParams.default(3), device="cpu")


def test_equal_loudness_mix_meets_the_reference_loudness_with_sample_peaks_below_minus_1_dbfs(reference):
    result = mix_session(session(), reference, method="equal-loudness")
    assert result.method == "equal-loudness" and result.params is None
    assert result.audio.shape == (2, round(DURATION_S * SAMPLE_RATE))
    assert float(result.audio.abs().max()) <= 10 ** (-1 / 20) + 1e-6
    assert result.loudness_lufs == pytest.approx(reference_loudness_lufs(reference, SAMPLE_RATE), abs=0.2)
    with pytest.raises(ValueError, match="no console parameters"):
        result.preset()


def test_equal_loudness_without_reference_is_at_minus_14_lufs_or_peak_limited():
    quiet = Stems(names=["A", "B"], audio=[noise(DURATION_S, rms=0.01, seed=1), noise(DURATION_S, rms=0.01, seed=2)],
                  sample_rate=SAMPLE_RATE, warnings=["a warning"])
    result = mix_session(quiet, None, method="equal-loudness")
    peak_dbfs = 20 * math.log10(float(result.audio.abs().max()))
    assert result.loudness_lufs == pytest.approx(-14.0, abs=0.2) or peak_dbfs == pytest.approx(-1.0, abs=0.01)
    assert result.warnings == ["a warning"]


@pytest.mark.parametrize("method", ["auto", "fit", "controller"])
def test_matching_methods_need_a_reference(method):
    with pytest.raises(MixingError, match="needs a reference"):
        mix_session(session(), None, method=method)


def test_unknown_method_and_params_with_a_method_are_programming_errors(reference):
    with pytest.raises(ValueError, match="unknown method"):
        mix_session(session(), reference, method="magic")
    with pytest.raises(ValueError, match="does not apply"):
        mix_session(session(), reference, method="fit", params=MixParams.default(4))


def test_controller_method_without_a_checkpoint_says_none_is_installed(reference, tmp_path):
    with pytest.raises(CheckpointError, match="No controller checkpoint is installed"):
        mix_session(session(), reference, method="controller", checkpoint=tmp_path / "missing.pt")


def test_auto_with_a_damaged_checkpoint_falls_back_and_warns(reference, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "AUTO_START", "controller")
    damaged = tmp_path / "controller.pt"
    damaged.write_bytes(b"not a checkpoint")
    result = mix_session(session(), reference, method="auto", checkpoint=damaged, iterations=0, device="cpu")
    assert result.method == "expert+balance+fit+match"
    assert len(result.warnings) == 1 and "expert settings" in result.warnings[0]
    with pytest.raises(CheckpointError):
        mix_session(session(), reference, method="controller", checkpoint=damaged)


def test_controller_method_renders_the_prediction_at_the_reference_loudness(reference, tmp_path, monkeypatch):
    torch.manual_seed(0)
    path = tmp_path / "controller.pt"
    save_checkpoint(path, Controller(**tiny_config()), training_info={"steps": 0})
    result = mix_session(session(), reference, method="controller", checkpoint=path, device="cpu")
    assert result.method == "controller" and result.fit is None
    target_lufs = reference_loudness_lufs(reference, SAMPLE_RATE)
    assert result.params.master["master_loudness_lufs"] == pytest.approx(target_lufs)
    assert torch.isfinite(result.audio).all()
    assert true_peak_dbtp(result.audio, SAMPLE_RATE) <= -1.0 + 1e-3
    # auto fits from the start AUTO_START names; fit always from the expert's.
    for auto_start, method, expected in (
        ("expert", "auto", "expert+balance+fit+match"),
        ("controller", "auto", "controller+fit+match"),
        ("controller", "fit", "expert+balance+fit+match"),
    ):
        monkeypatch.setattr(pipeline, "AUTO_START", auto_start)
        fitted = mix_session(session(), reference, method=method, checkpoint=path, iterations=0, device="cpu")
        assert fitted.method == expected
    # A caller (the quality bench) can choose the start per call instead.
    monkeypatch.setattr(pipeline, "AUTO_START", "expert")
    chosen = mix_session(session(), reference, checkpoint=path, iterations=0, device="cpu", auto_start="controller")
    assert chosen.method == "controller+fit+match"
    with pytest.raises(ValueError, match="auto start"):
        mix_session(session(), reference, checkpoint=path, iterations=0, device="cpu", auto_start="guess")


def test_mono_reference_goes_to_both_channels(tmp_path):
    mono = sine(440.0, 1.5)
    assert torch.equal(as_stereo(mono), mono.expand(2, -1))
    path = write_audio(tmp_path / "ref.wav", mono)
    loaded = load_reference(path, isolate=False)
    assert loaded.shape == (2, mono.shape[-1])
    assert torch.equal(loaded[0], loaded[1])
    with pytest.raises(ValueError, match="1 or 2 channels"):
        as_stereo(torch.zeros(3, 10))


def test_stem_files_expand_folders_sorted_and_zips_in_order(tmp_path):
    folder = tmp_path / "stems"
    folder.mkdir()
    for name in ("b.wav", "a.flac", ".hidden.wav", "notes.txt"):
        (folder / name).write_bytes(b"x")
    (folder / "sub").mkdir()
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("z.wav", b"x")
        handle.writestr("readme.pdf", b"x")
    single = tmp_path / "c.wav"
    single.write_bytes(b"x")
    paths, notes = stem_files([folder, archive, single], tmp_path / "scratch")
    assert [p.name for p in paths] == ["a.flac", "b.wav", "z.wav", "c.wav"]
    assert len(notes) == 1 and "readme.pdf" in notes[0]


def test_stem_files_refuse_missing_and_non_audio_inputs(tmp_path):
    with pytest.raises(StemError, match="no such file"):
        stem_files([tmp_path / "nope.wav"], tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    with pytest.raises(StemError, match="not an audio file"):
        stem_files([text], tmp_path)


def test_read_preset_matches_tracks_by_name_and_names_the_file_in_errors(tmp_path):
    params = MixParams.default(2)
    params.tracks[1]["gain_db"] = 3.0
    path = tmp_path / "p.json"
    path.write_text(json.dumps(params.to_preset(["Bass", "Kick"])))
    assert read_preset(path, ["Kick", "Bass"]).tracks[0]["gain_db"] == 3.0
    path.write_text("{not json")
    with pytest.raises(PresetError, match=r"p\.json is not valid JSON"):
        read_preset(path, ["Kick"])
    path.write_text(json.dumps({"schema_version": 1, "master": {"master_width_pct": 500}}))
    with pytest.raises(PresetError, match=r"p\.json: master: master_width_pct"):
        read_preset(path, ["Kick"])
    with pytest.raises(PresetError, match=r"missing\.json: cannot be read"):
        read_preset(tmp_path / "missing.json", ["Kick"])


@pytest.mark.parametrize("channels", [1, 2], ids=["one channel", "the same signal twice"])
def test_a_mono_reference_leaves_width_and_balance_alone_and_says_so(channels):
    mono = noise(DURATION_S, rms=0.05, seed=7)
    result = mix_session(session(), mono.expand(channels, -1), method="fit", iterations=2, time_budget_s=None,
                         device="cpu")
    assert any("reference is mono" in warning for warning in result.warnings)
    fitted_master, master = result.fit.params.master, result.params.master
    assert master["master_width_pct"] == fitted_master["master_width_pct"]
    assert master["master_balance_pct"] == fitted_master["master_balance_pct"]
    # Left to the stereo terms, a mono reference would fold the mix to mono.
    assert master["master_width_pct"] > 50.0


def test_a_stereo_reference_is_matched_in_width(reference):
    result = mix_session(session(), reference, method="fit", iterations=2, time_budget_s=None, device="cpu")
    assert not any("reference is mono" in warning for warning in result.warnings)
    assert result.params.master["master_width_pct"] != result.fit.params.master["master_width_pct"]
