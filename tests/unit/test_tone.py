"""The neural tone model: STFT round trip, shapes, family names, pairs, the split by recording, the fitted-EQ
baseline, a tiny training run, checkpoints."""
import random

import numpy as np
import pytest
import torch

from mixing.dsp.eq import parametric_eq_iir
from mixing.errors import MixingError
from mixing.loudness import integrated_loudness_lufs
from mixing.params import defaults
from mixing.tone.data import (
    AUGMENT_SEMITONES,
    CLIP_LUFS,
    Pair,
    console_pair,
    loudest_window_start,
    pairs_from_folder,
    random_tone_params,
)
from mixing.tone.eq_fit import EQ_FIT_PARAMS, eq_magnitude, fit_eq
from mixing.tone.family import family_from_name, family_from_spectrum
from mixing.tone.model import N_BINS, ToneDAE, magnitude_frames, process_audio, resynthesize, stft
from mixing.tone.train import ToneConfig, augment, load_tone_checkpoint, save_tone_checkpoint, split_pairs, train_tone

SR = 44100


def _tone(freq_hz: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_untouched_magnitude_resynthesises_the_input():
    audio = torch.from_numpy(_tone(440.0, 1.0) + 0.01 * np.random.default_rng(0).standard_normal(SR).astype(
        np.float32))
    spectrum = stft(audio)
    assert spectrum.shape == (1 + SR // 1024, N_BINS)
    out = resynthesize(spectrum.abs(), spectrum, audio.shape[-1])
    assert out.shape == audio.shape
    assert float((out - audio).abs().max()) < 1e-5


def test_model_maps_frames_to_frames_and_audio_to_audio():
    model = ToneDAE(hidden_units=32)
    frames = torch.rand(7, N_BINS)
    with torch.no_grad():
        out = model.eval()(frames)
    assert out.shape == (7, N_BINS) and float(out.min()) >= 0.0
    stereo = torch.from_numpy(np.stack([_tone(220.0, 0.5), _tone(330.0, 0.5)]))
    assert process_audio(model, stereo, scale=2.0).shape == stereo.shape


@pytest.mark.parametrize(("name", "family"), [
    ("Bass", "bass"), ("SY BASS", "bass"), ("BGVOX 2", "vocal"), ("Vox2", "vocal"), ("Lead Vox", "vocal"),
    ("Kick", "drums"), ("Bass Drum", "drums"), ("HATS", "drums"), ("Gtr", "guitar"), ("Gtr_L", "guitar"),
    ("Keys", "keys"), ("Pad", "keys"), ("FILL PIANO", "keys"), ("BEEP", None),
])
def test_family_from_name(name, family):
    assert family_from_name(name) == family


def test_family_from_spectrum():
    assert family_from_spectrum(_tone(60.0, 2.0), SR) == "bass"
    assert family_from_spectrum(_tone(3000.0, 2.0), SR) == "vocal"
    clicks = np.zeros(2 * SR, dtype=np.float32)
    clicks[:: SR // 2] = 1.0
    assert family_from_spectrum(clicks, SR) == "drums"


def test_loudest_window_finds_the_burst():
    audio = np.zeros(30 * SR, dtype=np.float32)
    audio[12 * SR:22 * SR] = _tone(200.0, 10.0)
    assert loudest_window_start(audio, SR) == 12 * SR


def test_console_pair_is_loudness_normalised_and_changed():
    raw = _tone(110.0, 3.0) + _tone(3000.0, 3.0, 0.1)
    params = random_tone_params("vocal", random.Random(1))
    pair = console_pair(raw, SR, params, "test", "song/Vox.wav")
    assert pair.raw.shape == pair.processed.shape == (3 * SR,)
    assert pair.recording == "song/Vox.wav" and pair.tone_params == params
    # Made again from its recording and settings, as bench/tone.py does with a checkpoint's test pairs.
    assert np.array_equal(console_pair(raw, SR, pair.tone_params, "again", "song/Vox.wav").processed, pair.processed)
    assert integrated_loudness_lufs(pair.processed[None], SR) == pytest.approx(CLIP_LUFS, abs=0.1)
    assert float(np.abs(pair.raw - pair.processed).mean()) > 1e-3


def test_augmentation_steps_are_50_cents_to_4_semitones():
    assert AUGMENT_SEMITONES[0] == -4.0 and AUGMENT_SEMITONES[-1] == 4.0 and len(AUGMENT_SEMITONES) == 16
    assert 0.0 not in AUGMENT_SEMITONES


def test_split_holds_out_a_tenth_of_the_recordings_with_all_their_draws():
    # 20 recordings with 3 draws each; the same stem name in different session folders is a different recording.
    pairs = [Pair(np.zeros(4), np.zeros(4), SR, f"draw {draw}", f"session_{i:02d}/Bass.wav")
             for i in range(20) for draw in range(3)]
    train, test = split_pairs(pairs, random.Random(0))
    assert len({p.recording for p in test}) == 2 and len(test) == 6 and len(train) == 54
    assert not {p.recording for p in train} & {p.recording for p in test}


def test_augment_draws_distinct_shifts_per_clip_and_keeps_the_recording():
    pairs = [Pair(_tone(220.0, 0.5), _tone(220.0, 0.5, 0.1), SR, f"clip {i}", f"rec {i}") for i in range(2)]
    shifted = augment(pairs, ToneConfig(augment_per_clip=3), random.Random(0))
    assert len(shifted) == 6 and [p.recording for p in shifted] == ["rec 0"] * 3 + ["rec 1"] * 3
    assert len({p.source for p in shifted[:3]}) == 3


def test_fitted_eq_recovers_a_known_strip_eq():
    # Noise through the console's exact IIR EQ with known gains: the fitted response must match the true one.
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32) * 0.1)
    true = defaults(EQ_FIT_PARAMS) | {"gain_db": -2.0, "eq_low_shelf_gain_db": 4.0, "eq_band2_gain_db": 6.0,
                                      "eq_high_shelf_gain_db": -8.0}
    columns = {name: torch.tensor([value]) for name, value in true.items()}
    gain = 10 ** (true["gain_db"] / 20)
    processed = parametric_eq_iir(noise.reshape(1, 1, -1) * gain, SR, columns, "")[0, 0]
    raw_frames, processed_frames = magnitude_frames(noise), magnitude_frames(processed)
    [(fitted, error)] = fit_eq([(raw_frames, processed_frames)], SR)
    fitted_db = 20 * torch.log10(eq_magnitude({k: torch.tensor([v]) for k, v in fitted.items()}, SR)[0])
    true_db = 20 * torch.log10(eq_magnitude(columns, SR)[0])
    freqs_hz = torch.arange(N_BINS) * SR / 2048
    audible = (freqs_hz > 40.0) & (freqs_hz < 16000.0)
    assert float((fitted_db - true_db)[audible].abs().max()) < 0.5
    assert error < 0.05 * float((raw_frames - processed_frames).abs().mean())


def test_training_learns_a_gain_and_the_checkpoint_round_trips(tmp_path):
    # The processed side is the raw one 6 dB down at every bin: a map the network can learn in a few epochs.
    rng = np.random.default_rng(0)
    pairs = [Pair(raw, raw * 0.5, SR, f"clip {i}", f"rec {i}") for i, raw in
             enumerate(rng.standard_normal((10, SR // 2)).astype(np.float32) * 0.1)]
    config = ToneConfig(hidden_units=64, pretrain_epochs=1, finetune_epochs=30, augment_semitones=[],
                        batch_frames=32)
    model, metadata = train_tone("bass", pairs, config, log=lambda line: None)
    assert metadata["test_mae"] < 0.5 * metadata["identity_test_mae"]
    # A broadband -6 dB is the strip's own gain: the fitted EQ maps it (nearly) exactly.
    assert metadata["eq_fit_test_mae"] < 0.05 * metadata["identity_test_mae"]
    assert metadata["test_recordings"] == [metadata["test_pairs"][0]["recording"]]
    assert len(metadata["test_sources"]) == 1 and len(metadata["train_sources"]) == 9
    save_tone_checkpoint(tmp_path / "bass.pt", model, metadata)
    loaded, loaded_metadata = load_tone_checkpoint(tmp_path / "bass.pt")
    assert loaded_metadata["family"] == "bass"
    frames = magnitude_frames(torch.from_numpy(pairs[0].raw))
    assert torch.allclose(loaded(frames), model.eval()(frames), atol=1e-2 * float(frames.max()))


def test_bad_checkpoint_and_missing_partner_name_the_file(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"nope")
    with pytest.raises(MixingError, match=r"x\.pt"):
        load_tone_checkpoint(tmp_path / "x.pt")
    (tmp_path / "raw").mkdir()
    (tmp_path / "processed").mkdir()
    import soundfile as sf
    sf.write(tmp_path / "raw" / "Bass.wav", _tone(80.0, 1.0), SR)
    with pytest.raises(MixingError, match=r"Bass\.wav"):
        pairs_from_folder(tmp_path, SR)


def test_untrained_mask_model_is_the_identity():
    # The output layer starts at zero: log-gain 0, so the frames (and the audio) come back unchanged.
    model = ToneDAE(hidden_units=32)
    model.fit_features(torch.rand(50, N_BINS))
    frames = torch.rand(7, N_BINS)
    with torch.no_grad():
        assert torch.equal(model.eval()(frames), frames)
