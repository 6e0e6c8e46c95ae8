"""The neural tone stage before the channel strip: off is bit-identical, full wet is the model's output through
the strip, amounts between are the lerp, and moving the amount re-blends without running the model again."""
import math

import pytest
import torch

from mixing.dsp.console import IncrementalRenderer
from mixing.params import SCHEMA_VERSION, TRACK_SPECS, MixParams
from mixing.tone import stage
from mixing.tone.model import MAX_LOG_GAIN, N_BINS, ToneDAE, process_audio
from mixing.tone.stage import ToneStage, tone_blend, tone_unavailable, tone_wet
from mixing.tone.train import save_tone_checkpoint
from tests.signals import amplitude_at

SAMPLE_RATE = 44100
# The fake bass model's bias above CUT_BIN: a frame-independent treble cut, of this gain once the model's tanh
# squash has had its say.
CUT_BIN = 40
CUT_LOG_GAIN = math.log(0.25)
CUT_GAIN = math.exp(MAX_LOG_GAIN * math.tanh(CUT_LOG_GAIN / MAX_LOG_GAIN))


def _tracks(seconds: float = 2.0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    bass = 0.2 * torch.sin(2 * math.pi * 55.0 * t) + 0.05 * torch.randn(t.shape, generator=generator)
    other = 0.1 * torch.randn(2, t.shape[0], generator=generator)
    return [bass.unsqueeze(0), other]


@pytest.fixture
def bass_model(tmp_path, monkeypatch) -> ToneDAE:
    """A bass checkpoint whose model cuts every bin above CUT_BIN to CUT_GAIN (zero weights, a fixed bias), in a
    folder of its own: the stage finds it there and no model for any other family."""
    model = ToneDAE(hidden_units=16)
    with torch.no_grad():
        model.output.bias[CUT_BIN:] = CUT_LOG_GAIN
    save_tone_checkpoint(tmp_path / "bass.pt", model, {"config": {"hidden_units": 16, "hidden_layers": 3}})
    monkeypatch.setattr(stage, "CHECKPOINT_DIR", tmp_path)
    stage.tone_model.cache_clear()
    yield stage.tone_model("bass")
    stage.tone_model.cache_clear()


def _params(tracks, amount_pct: float, **strip) -> MixParams:
    params = MixParams.default(len(tracks))
    params.tracks[0].update(tone_amount_pct=amount_pct, **strip)
    return params


# A strip that changes the sound (gain, EQ, compressor), so "through the strip" is tested, not the identity.
STRIP = {"gain_db": -3.0, "eq_band2_gain_db": 6.0, "comp_threshold_db": -30.0, "comp_ratio": 4.0}


def test_schema_has_the_amount_off_by_default_and_not_learnable():
    spec = TRACK_SPECS["tone_amount_pct"]
    assert (spec.unit, spec.min, spec.max, spec.default, spec.learnable) == ("%", 0.0, 100.0, 0.0, False)
    assert SCHEMA_VERSION == 7
    older = MixParams.from_preset({"schema_version": 6, "tracks": [{"name": "Bass", "params": {"gain_db": 1.0}}],
                                   "master": {}})
    assert older.tracks[0]["tone_amount_pct"] == 0.0


def test_amount_zero_is_bit_identical_to_no_stage(bass_model):
    tracks = _tracks()
    plain = IncrementalRenderer(tracks, SAMPLE_RATE).render(_params(tracks, 0.0, **STRIP))
    toned = IncrementalRenderer(tracks, SAMPLE_RATE, tone=ToneStage(["bass", None])).render(
        _params(tracks, 0.0, **STRIP))
    assert torch.equal(plain, toned)


def test_full_amount_is_the_models_output_through_the_strip(bass_model):
    # The fake model's cut above CUT_BIN (861 Hz): an 8 kHz sine comes out at CUT_GAIN, 100 Hz untouched.
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    sines = (0.2 * torch.sin(2 * math.pi * 100.0 * t) + 0.2 * torch.sin(2 * math.pi * 8000.0 * t)).unsqueeze(0)
    shaped = tone_wet(sines, SAMPLE_RATE, "bass")[0]
    assert amplitude_at(shaped, 8000.0) / amplitude_at(sines[0], 8000.0) == pytest.approx(CUT_GAIN, rel=0.01)
    assert amplitude_at(shaped, 100.0) / amplitude_at(sines[0], 100.0) == pytest.approx(1.0, rel=0.01)

    tracks = _tracks()
    wet = tone_wet(tracks[0], SAMPLE_RATE, "bass")
    assert torch.allclose(wet, process_audio(bass_model, tracks[0], scale=float(_scale(tracks[0]))), atol=1e-6)

    toned = IncrementalRenderer(tracks, SAMPLE_RATE, tone=ToneStage(["bass", None]))
    expected = IncrementalRenderer([wet, tracks[1]], SAMPLE_RATE)
    params = _params(tracks, 100.0, **STRIP)
    assert torch.allclose(toned.strip_outputs(params)[0], expected.strip_outputs(params)[0], atol=1e-6)
    assert torch.allclose(toned.render(params), expected.render(params), atol=1e-6)


def _scale(audio: torch.Tensor) -> float:
    from mixing.loudness import integrated_loudness_lufs
    from mixing.tone.data import CLIP_LUFS

    # The clip is shorter than the 10 s training window, so the loudest window is the whole track.
    return 10.0 ** ((CLIP_LUFS - integrated_loudness_lufs(audio, SAMPLE_RATE)) / 20.0)


def test_half_amount_is_the_lerp_of_dry_and_wet_through_the_strip(bass_model):
    tracks = _tracks()
    wet = tone_wet(tracks[0], SAMPLE_RATE, "bass")
    assert torch.allclose(tone_blend(tracks[0], wet, 50.0), (tracks[0] + wet) / 2, atol=1e-7)
    assert tone_blend(tracks[0], wet, 0.0) is tracks[0]
    toned = IncrementalRenderer(tracks, SAMPLE_RATE, tone=ToneStage(["bass", None]))
    expected = IncrementalRenderer([(tracks[0] + wet) / 2, tracks[1]], SAMPLE_RATE)
    params = _params(tracks, 50.0, **STRIP)
    assert torch.allclose(toned.strip_outputs(params)[0], expected.strip_outputs(params)[0], atol=1e-6)


def test_moving_the_amount_reblends_without_running_the_model(bass_model, monkeypatch):
    tracks = _tracks()
    calls = []
    monkeypatch.setattr(stage, "tone_wet", lambda *args: calls.append(args) or tone_wet(*args))
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE, tone=ToneStage(["bass", None]))
    renderer.render(_params(tracks, 30.0))
    assert (len(calls), renderer.processed_tracks) == (1, 2)
    renderer.render(_params(tracks, 80.0))
    renderer.render(_params(tracks, 0.0))
    # Each move re-runs the bass track's strip only, and the model ran once.
    assert (len(calls), renderer.processed_tracks) == (1, 4)


def test_a_family_change_makes_the_wet_anew_and_one_without_a_model_passes_dry(bass_model):
    tracks = _tracks()
    tone = ToneStage(["bass", None])
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE, tone=tone)
    params = _params(tracks, 100.0)
    toned = renderer.render(params)
    tone.set_families(["guitar", None])
    assert tone_unavailable("guitar") == "no model for guitar yet"
    dry = IncrementalRenderer(tracks, SAMPLE_RATE).render(params)
    assert torch.equal(renderer.render(params), dry)
    assert not torch.allclose(toned, dry, atol=1e-3)
    assert renderer.processed_tracks == 3


def test_reasons_for_no_stage(bass_model):
    assert tone_unavailable("bass") is None
    assert tone_unavailable(None) == "no family chosen"
    assert tone_unavailable("kazoo") == "unknown family 'kazoo'"


def test_wet_at_another_rate_keeps_length_and_level(bass_model):
    rate = 48000
    audio = 0.1 * torch.randn(1, rate, generator=torch.Generator().manual_seed(1))
    wet = tone_wet(audio, rate, "bass")
    assert wet.shape == audio.shape
    # White noise through the model's cut above CUT_BIN (861 Hz at the model's rate), the band above the model
    # rate's Nyquist frequency (22.05 kHz) lost on the way: the power left is the band below the cut, plus the
    # rest at CUT_GAIN squared.
    cut_hz = CUT_BIN * SAMPLE_RATE / (2 * (N_BINS - 1))
    expected = (cut_hz + (SAMPLE_RATE / 2 - cut_hz) * CUT_GAIN**2) / (rate / 2)
    assert float(wet.square().mean() / audio.square().mean()) == pytest.approx(expected, rel=0.15)


def test_explain_reads_the_compressor_on_the_toned_track(bass_model):
    from mixing.explain import gain_reductions_db, track_explanations

    tracks = _tracks()
    renderer = IncrementalRenderer(tracks, SAMPLE_RATE, tone=ToneStage(["bass", None]))
    params = _params(tracks, 100.0, **STRIP)
    cache: dict = {}
    toned = track_explanations(renderer, params, [True, True], cache=cache)[0]["gain_reduction_db"]
    wet = tone_wet(tracks[0], SAMPLE_RATE, "bass")
    assert toned == gain_reductions_db([wet], [params.tracks[0]], SAMPLE_RATE)[0]
    # The wet has the noise above 861 Hz cut to CUT_GAIN, so it is quieter and the compressor works less on it.
    params.tracks[0]["tone_amount_pct"] = 0.0
    dry = track_explanations(renderer, params, [True, True], cache=cache)[0]["gain_reduction_db"]
    assert dry == gain_reductions_db([tracks[0]], [params.tracks[0]], SAMPLE_RATE)[0]
    assert min(dry) < min(toned)


def test_an_unknown_family_is_guessed_only_when_the_stage_first_needs_it():
    guessed = []
    tone = ToneStage([None, "keys"], guess=lambda index: guessed.append(index) or "bass")
    assert tone.active_family(0, 0.0) is None and guessed == []
    tone.active_family(0, 50.0)
    tone.active_family(0, 60.0)
    assert guessed == [0] and tone.families == ["bass", "keys"]
