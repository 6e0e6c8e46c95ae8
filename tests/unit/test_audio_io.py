import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from mixing import SAMPLE_RATE
from mixing.audio import Stems, load_audio, load_stems, save_audio, session_rate_hz, validate_stem
from mixing.errors import SessionError, StemError, StemsRejected
from mixing.pipeline import load_reference
from tests.signals import noise, sine, write_audio

SINE_RMS = 0.5 / np.sqrt(2)


def rms(audio: torch.Tensor) -> float:
    return float(audio.pow(2).mean().sqrt())


def dominant_freq_hz(audio: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio[0].numpy()))
    return float(np.argmax(spectrum) * sample_rate / audio.shape[-1])


@pytest.mark.parametrize("extension, subtype, level_tolerance", [
    ("wav", "PCM_16", 1e-3), ("wav", "PCM_24", 1e-4), ("wav", "FLOAT", 1e-6),
    ("flac", "PCM_24", 1e-4), ("aiff", "PCM_16", 1e-3), ("caf", "PCM_24", 1e-4),
    ("ogg", "VORBIS", 0.05), ("mp3", "MPEG_LAYER_III", 0.05),
])
@pytest.mark.parametrize("channels", [1, 2])
def test_each_format_loads_with_its_channels_rate_and_level(tmp_path, extension, subtype, level_tolerance, channels):
    path = write_audio(tmp_path / f"stem.{extension}", sine(1000, 2.0, channels=channels), subtype=subtype)
    audio = load_audio(path, isolate=False)
    assert audio.dtype == torch.float32
    assert audio.shape == (channels, 2 * SAMPLE_RATE)
    assert rms(audio) == pytest.approx(SINE_RMS, rel=level_tolerance)
    assert dominant_freq_hz(audio) == pytest.approx(1000, abs=1)


def test_m4a_from_ffmpegs_aac_encoder_loads(tmp_path):
    wav = write_audio(tmp_path / "voice.wav", sine(1000, 2.0, sample_rate=48000, channels=2), 48000)
    m4a = tmp_path / "Voice Memo.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    audio = load_audio(m4a, isolate=False)
    assert audio.shape[0] == 2
    # AAC adds up to one 1024-sample frame of priming.
    assert abs(audio.shape[1] - 2 * SAMPLE_RATE) <= 1100
    assert rms(audio) == pytest.approx(SINE_RMS, rel=0.05)
    assert dominant_freq_hz(audio) == pytest.approx(1000, abs=1)


@pytest.mark.parametrize("sample_rate", [8000, 22050, 48000, 96000])
def test_other_rates_are_resampled_keeping_pitch_duration_and_level(tmp_path, sample_rate):
    path = write_audio(tmp_path / "s.flac", sine(1000, 2.0, sample_rate=sample_rate), sample_rate, subtype="PCM_24")
    audio = load_audio(path, isolate=False)
    assert audio.shape == (1, 2 * SAMPLE_RATE)
    assert dominant_freq_hz(audio) == pytest.approx(1000, abs=1)
    middle = audio[:, SAMPLE_RATE // 2: -SAMPLE_RATE // 2]  # away from the resampler's edges
    assert rms(middle) == pytest.approx(SINE_RMS, rel=1e-3)


@pytest.mark.parametrize("rates_hz, expected_hz", [
    ([48000, 48000, 44100], 48000),   # the most common
    ([44100, 48000], 48000),          # a tie goes to the highest
    ([24000, 24000, 48000], 44100),   # below 40 kHz the match EQ's top bark bands would be missing
    ([96000], 96000),
])
def test_the_session_rate_is_the_most_common_of_the_stems(rates_hz, expected_hz):
    assert session_rate_hz(rates_hz) == expected_hz


@pytest.mark.parametrize("isolate", [False, True])
def test_a_mixed_rate_session_loads_at_its_most_common_rate_and_the_reference_follows(tmp_path, isolate):
    paths = [write_audio(tmp_path / "a.wav", sine(1000, 1.0, sample_rate=24000), 24000, subtype="PCM_24"),
             write_audio(tmp_path / "b.wav", sine(500, 1.0, sample_rate=48000), 48000, subtype="PCM_24"),
             write_audio(tmp_path / "c.flac", sine(250, 1.0, sample_rate=48000), 48000, subtype="PCM_24")]
    stems = load_stems(paths, isolate=isolate)
    assert stems.sample_rate == 48000
    assert [a.shape[-1] for a in stems.audio] == [48000] * 3
    assert dominant_freq_hz(stems.audio[0], 48000) == pytest.approx(1000, abs=1)
    reference = write_audio(tmp_path / "ref.wav", sine(2000, 1.5), subtype="PCM_24")  # at 44.1 kHz
    audio = load_reference(reference, isolate=isolate, sample_rate_hz=stems.sample_rate)
    assert audio.shape == (2, 72000)
    assert dominant_freq_hz(audio, 48000) == pytest.approx(2000, abs=1)


def test_isolated_load_returns_the_same_audio_as_in_process(tmp_path):
    path = write_audio(tmp_path / "a.wav", noise(1.5, channels=2), subtype="FLOAT")
    torch.testing.assert_close(load_audio(path), load_audio(path, isolate=False), rtol=0, atol=0)


def test_validate_stem_describes_the_source(tmp_path):
    path = write_audio(tmp_path / "Bass.wav", sine(100, 3.0, sample_rate=48000, channels=2), 48000)
    info = validate_stem(path, isolate=False)
    assert (info.name, info.source_sample_rate_hz, info.channels) == ("Bass.wav", 48000, 2)
    assert info.duration_s == pytest.approx(3.0)
    assert info.peak_dbfs == pytest.approx(-6.02, abs=0.01)


def test_the_users_file_name_picks_the_decoder_and_names_errors(tmp_path):
    blob = tmp_path / "upload-1234"
    sf.write(blob, sine(440, 1.5).numpy().T, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    assert load_audio(blob, name="Lead.wav", isolate=False).shape == (1, int(1.5 * SAMPLE_RATE))
    with pytest.raises(StemError, match=r"^Lead\.txt: its format \('\.txt'\) is not supported"):
        load_audio(blob, name="Lead.txt", isolate=False)


def test_load_stems_names_pads_to_the_longest_and_warns_past_one_second(tmp_path):
    kick = write_audio(tmp_path / "01_Kick.wav", sine(60, 2.0))
    bass = write_audio(tmp_path / "02_Bass.flac", sine(80, 3.5, sample_rate=48000), 48000)
    kick2 = write_audio(tmp_path / "kick.aiff", sine(60, 3.0, channels=2))
    stems = load_stems([kick, bass, kick2], isolate=False)
    assert isinstance(stems, Stems)
    assert stems.names == ["Kick", "Bass", "kick (2)"]
    assert stems.sample_rate == SAMPLE_RATE
    assert [tuple(a.shape) for a in stems.audio] == [(1, 154350), (1, 154350), (2, 154350)]
    assert len(stems.warnings) == 1
    assert "01_Kick.wav is 1.5 s shorter than the longest stem (02_Bass.flac)" in stems.warnings[0]
    torch.testing.assert_close(stems.audio[0][:, : 2 * SAMPLE_RATE], sine(60, 2.0), rtol=0, atol=1 / 32768)
    assert not stems.audio[0][:, 2 * SAMPLE_RATE:].any()


def test_load_stems_takes_file_and_track_names(tmp_path):
    blobs = [write_audio(tmp_path / f"blob{i}.wav", sine(100, 1.5)) for i in range(2)]
    stems = load_stems(blobs, filenames=["03_Lead Vox.wav", "x.wav"], names=["Pad", "Pad"], isolate=False)
    assert stems.names == ["Pad", "Pad (2)"]
    assert load_stems(blobs, filenames=["03_Lead Vox.wav", "x.wav"], isolate=False).names == ["Lead Vox", "x"]
    with pytest.raises(ValueError, match="as many filenames"):
        load_stems(blobs, names=["one"], isolate=False)


def test_load_stems_reports_every_rejected_file_in_order(tmp_path):
    good = write_audio(tmp_path / "Good.wav", sine(440, 1.5))
    corrupt = tmp_path / "Corrupt.wav"
    corrupt.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    empty = tmp_path / "Empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(StemsRejected) as caught:
        load_stems([empty, good, corrupt], isolate=False)
    assert [e.name for e in caught.value.errors] == ["Empty.wav", "Corrupt.wav"]
    assert "2 stems were rejected" in str(caught.value)


def test_a_silent_stem_is_kept_marked_and_named_in_a_warning(tmp_path):
    good = write_audio(tmp_path / "Good.wav", sine(440, 1.5))
    silent = write_audio(tmp_path / "Silent.wav", torch.zeros(1, round(1.5 * SAMPLE_RATE)))
    # 16-bit dither-like noise at -100 dBFS is silence too.
    hiss = write_audio(tmp_path / "Hiss.wav", noise(1.5, rms=2e-6, seed=1).clamp(-1e-5, 1e-5), subtype="FLOAT")
    stems = load_stems([silent, good, hiss], isolate=False)
    assert stems.names == ["Silent", "Good", "Hiss"] and stems.silent == [True, False, True]
    assert [w for w in stems.warnings if "silent" in w] == [
        "Silent.wav is silent (peak below -90 dBFS): it is kept and left out of the mix.",
        "Hiss.wav is silent (peak below -90 dBFS): it is kept and left out of the mix.",
    ]


def test_silence_is_read_off_the_peaks_decoding_measured(tmp_path):
    # A 0.5 sine peaks at 20 log10(0.5) = -6.02 dBFS; the zeros at -inf.
    paths = [write_audio(tmp_path / "Sine.wav", sine(440, 1.0), subtype="FLOAT"),
             write_audio(tmp_path / "Zeros.wav", torch.zeros(1, SAMPLE_RATE))]
    stems = load_stems(paths, isolate=False)
    assert stems.peak_dbfs[0] == pytest.approx(-6.02, abs=0.01) and stems.peak_dbfs[1] == -np.inf
    # The carried peaks decide, not the samples: a stem said to peak at -120 dBFS is silent whatever it holds.
    said_quiet = Stems(["A", "B"], [sine(440, 1.0), torch.zeros(1, SAMPLE_RATE)], SAMPLE_RATE, [], [-120.0, -6.0])
    assert said_quiet.silent == [True, False]
    assert Stems(["A"], [sine(440, 1.0)], SAMPLE_RATE, []).silent == [False]


def test_a_silent_reference_is_refused_with_its_name(tmp_path):
    path = write_audio(tmp_path / "Ref.wav", torch.zeros(2, 2 * SAMPLE_RATE))
    with pytest.raises(StemError, match=r"Ref.wav: it is silent \(peak below -90 dBFS\)"):
        load_reference(path, isolate=False)


def test_load_stems_isolated_decodes_in_parallel_workers(tmp_path):
    paths = [write_audio(tmp_path / f"{i}.wav", sine(200 * (i + 1), 1.5)) for i in range(3)]
    stems = load_stems(paths, workers=2)
    assert [dominant_freq_hz(a) for a in stems.audio] == pytest.approx([200, 400, 600], abs=1)


def test_too_many_or_no_stems_is_refused_before_decoding_anything(tmp_path):
    missing = [tmp_path / f"{i}.wav" for i in range(3)]
    with pytest.raises(SessionError, match="3 stems were given; the maximum is 2 tracks"):
        load_stems(missing, max_tracks=2)
    with pytest.raises(SessionError, match="No stems"):
        load_stems([])


@pytest.mark.parametrize("file_format, subtype, tolerance", [
    ("wav", "PCM_16", 1.5 / 2**15), ("wav", "PCM_24", 0.5 / 2**23), ("wav", "FLOAT", 0),
    ("flac", "PCM_16", 1.5 / 2**15), ("flac", "PCM_24", 0.5 / 2**23),
])
def test_save_audio_round_trips_each_format(tmp_path, file_format, subtype, tolerance):
    audio = noise(1.0, channels=2)
    path = save_audio(tmp_path / f"mix.{file_format}", audio, format=file_format, subtype=subtype)
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels) == (file_format.upper(), subtype, SAMPLE_RATE, 2)
    read, _ = sf.read(path, dtype="float32", always_2d=True)
    np.testing.assert_allclose(read.T, audio.numpy(), rtol=0, atol=tolerance)


def test_save_audio_clips_integer_formats_but_not_float(tmp_path):
    loud = sine(100, 1.0, amplitude=1.5, channels=2)
    read_24, _ = sf.read(save_audio(tmp_path / "a.wav", loud, subtype="PCM_24"))
    read_float, _ = sf.read(save_audio(tmp_path / "b.wav", loud, subtype="FLOAT"))
    assert np.abs(read_24).max() == pytest.approx(1.0, abs=1e-6)
    assert np.abs(read_float).max() == pytest.approx(1.5, abs=1e-4)


def test_dither_keeps_a_signal_below_one_16_bit_step(tmp_path):
    quiet = sine(1000, 1.0, amplitude=0.4 / 32767)
    plain, _ = sf.read(save_audio(tmp_path / "plain.wav", quiet, subtype="PCM_16", dither=False))
    dithered, _ = sf.read(save_audio(tmp_path / "dithered.wav", quiet, subtype="PCM_16"))
    assert not plain.any()
    assert np.corrcoef(dithered, quiet[0].numpy())[0, 1] > 0.1
    assert (tmp_path / "dithered.wav").read_bytes() == save_audio(tmp_path / "again.wav", quiet,
                                                                   subtype="PCM_16").read_bytes()


def test_16_bit_dither_is_triangular_within_one_step_and_silence_becomes_noise_at_minus_96_dbfs(tmp_path):
    # TPDF of +-1 LSB: the difference of two uniform [0, 1) steps, mean 0, peak to peak 2 LSB, variance 1/6.
    # Rounded, silence becomes -1, 0 or +1 LSB with P(|d| > 1/2) = 2 * (1/2)**2 / 2 = 1/4, so a power of 1/4 LSB**2:
    # an RMS of 1/2 LSB = 0.5 / 32768, 20 log10 of which is -96.3 dBFS.
    silence = torch.zeros(2, 4 * SAMPLE_RATE)
    steps = sf.read(save_audio(tmp_path / "silence.wav", silence, subtype="PCM_16"), dtype="int16")[0]
    assert set(np.unique(steps)) == {-1, 0, 1}
    assert steps.mean() == pytest.approx(0.0, abs=0.01)
    assert np.mean(np.abs(steps) == 1) == pytest.approx(0.25, abs=0.01)
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean((steps / 32768.0) ** 2)))
    assert rms_dbfs == pytest.approx(20 * np.log10(0.5 / 32768), abs=0.1)
    assert rms_dbfs == pytest.approx(-96.3, abs=0.1)
    # Before rounding: a half-step input spreads over 0 and 1 by the triangle's tails, never beyond +-1 LSB of it.
    half = torch.full((1, 4 * SAMPLE_RATE), 0.5 / 32768)
    half_steps = sf.read(save_audio(tmp_path / "half.wav", half, subtype="PCM_16"), dtype="int16")[0]
    assert set(np.unique(half_steps)) <= {-1, 0, 1, 2}
    assert half_steps.mean() == pytest.approx(0.5, abs=0.01)  # unbiased: the mean is the input
    # 24-bit and float outputs are not dithered: silence stays exactly zero.
    for subtype in ("PCM_24", "FLOAT"):
        assert not sf.read(save_audio(tmp_path / f"{subtype}.wav", silence, subtype=subtype))[0].any()


def test_save_audio_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "mix.wav"
    path.write_bytes(b"previous mix")

    def failing_write(file, *args, **kwargs):
        file.write(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr("mixing.audio.io.sf.write", failing_write)
    with pytest.raises(RuntimeError):
        save_audio(path, sine(100, 1.0))
    assert path.read_bytes() == b"previous mix"
    assert [p.name for p in tmp_path.iterdir()] == ["mix.wav"]


@pytest.mark.parametrize("kwargs, audio, message", [
    ({"format": "flac", "subtype": "FLOAT"}, sine(100), "cannot write subtype 'FLOAT' as 'flac'"),
    ({"format": "mp3"}, sine(100), "cannot write"),
    ({}, sine(100)[0], r"expected audio of shape \(channels, samples\)"),
    ({}, torch.full((1, 100), float("nan")), "NaN"),
])
def test_save_audio_refuses_bad_arguments(tmp_path, kwargs, audio, message):
    with pytest.raises(ValueError, match=message):
        save_audio(tmp_path / "x", audio, **kwargs)
    assert not any(tmp_path.iterdir())
