"""bench/gpu's transport format: long Ogg Vorbis files write without a crash and come back whole and at level."""
import numpy as np
import soundfile as sf

from bench.gpu.prepare import write_ogg


def test_a_long_stereo_file_comes_back_with_every_frame_and_its_level(tmp_path):
    rate = 44100
    frames = 70 * rate  # one write of a minute or more crashes libsndfile 1.2.2
    t = np.arange(frames) / rate
    audio = np.stack([0.5 * np.sin(2 * np.pi * 440.0 * t), 0.25 * np.sin(2 * np.pi * 1000.0 * t)], axis=1)
    write_ogg(tmp_path / "long.ogg", audio, rate)
    back, back_rate = sf.read(tmp_path / "long.ogg", dtype="float32")
    assert back_rate == rate and back.shape == audio.shape
    rms_db = 20 * np.log10(np.sqrt(np.mean(back**2, axis=0)) / np.sqrt(np.mean(audio**2, axis=0)))
    assert np.all(np.abs(rms_db) < 0.1)


def test_a_mono_signal_is_written_as_one_channel(tmp_path):
    write_ogg(tmp_path / "mono.ogg", np.zeros(4410), 44100)
    assert sf.info(tmp_path / "mono.ogg").channels == 1
