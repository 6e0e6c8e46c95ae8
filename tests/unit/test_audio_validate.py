import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from mixing import SAMPLE_RATE
from mixing.audio import decode, load_audio, validate_stem
from mixing.audio.validate import is_silent
from mixing.errors import StemError
from tests.signals import noise, sine, write_audio


def rejection(path, **kwargs) -> StemError:
    with pytest.raises(StemError) as caught:
        load_audio(path, isolate=False, **kwargs)
    assert caught.value.name == path.name
    assert str(caught.value).startswith(f"{path.name}: ")
    return caught.value


def test_corrupt_bytes_are_unreadable(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    assert "not a readable audio file" in rejection(path).reason


def test_a_corrupt_m4a_is_unreadable(tmp_path):
    path = tmp_path / "Memo.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(range(256)) * 8)
    assert "not a readable audio file" in rejection(path).reason


def test_unknown_extension_is_unsupported(tmp_path):
    path = write_audio(tmp_path / "stem.wav", sine(440, 1.5)).rename(tmp_path / "stem.xyz")
    assert "format ('.xyz') is not supported" in rejection(path).reason


def test_zero_frames_is_empty(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), np.float32), SAMPLE_RATE)
    assert "no audio (zero frames)" in rejection(path).reason


def test_all_zeros_decodes_and_reads_as_silent(tmp_path):
    # Kept as a stem (left out of the mix); a reference is refused by its loader.
    path = write_audio(tmp_path / "silent.flac", torch.zeros(2, 2 * SAMPLE_RATE))
    info = validate_stem(path, isolate=False)
    assert info.peak_dbfs == float("-inf") and is_silent(info.peak_dbfs)
    assert not is_silent(-89.0)


def test_a_quiet_but_audible_stem_is_kept(tmp_path):
    path = write_audio(tmp_path / "quiet.wav", noise(1.5, rms=10 ** (-80 / 20)), subtype="FLOAT")
    assert load_audio(path, isolate=False).shape == (1, int(1.5 * SAMPLE_RATE))


def test_shorter_than_one_second(tmp_path):
    path = write_audio(tmp_path / "blip.wav", sine(440, 0.5))
    assert "only 0.50 s long; the minimum is 1 s." in rejection(path).reason


def test_longer_than_the_configured_maximum(tmp_path):
    path = write_audio(tmp_path / "long.ogg", sine(440, 3.0))
    assert "3.00 s long; the maximum is 2.00 s" in rejection(path, max_duration_s=2.0).reason


def test_a_flac_header_claiming_2_to_the_36_frames_is_refused_before_decoding(tmp_path):
    path = write_audio(tmp_path / "bomb.flac", sine(440, 1.5))
    data = bytearray(path.read_bytes())
    # STREAMINFO starts at byte 8; its 36-bit total-samples field ends at byte 18 + 8.
    packed = int.from_bytes(data[18:26], "big") | (2**36 - 1)
    data[18:26] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(data))
    assert sf.info(path).frames == 2**36 - 1
    start = time.perf_counter()
    assert "the maximum is 12.0 min" in rejection(path).reason
    assert time.perf_counter() - start < 1


def streamed_flac(tmp_path, duration_s):
    """A FLAC written to a pipe: its header gives no length, so only the read cap bounds it."""
    wav = write_audio(tmp_path / "source.wav", sine(440, duration_s))
    flac = tmp_path / "streamed.flac"
    with open(flac, "wb") as out:
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-f", "flac", "pipe:1"], stdout=out, check=True)
    assert sf.info(flac).frames == 2**63 - 1
    return flac


def test_a_flac_of_unknown_length_loads(tmp_path):
    assert load_audio(streamed_flac(tmp_path, 2.0), isolate=False).shape == (1, 2 * SAMPLE_RATE)


def test_a_flac_of_unknown_length_is_cut_off_past_the_maximum(tmp_path):
    path = streamed_flac(tmp_path, 4.0)
    assert "long; the maximum is 2.00 s" in rejection(path, max_duration_s=2.0).reason


def test_more_than_two_channels(tmp_path):
    path = write_audio(tmp_path / "surround.wav", sine(440, 1.5, channels=3))
    assert "it has 3 channels; only mono and stereo" in rejection(path).reason


@pytest.mark.parametrize("sample_rate", [1, 4000, 768000, 10_000_000])
def test_implausible_sample_rate_in_the_header(tmp_path, sample_rate):
    path = write_audio(tmp_path / "odd.wav", sine(1, 2.0, sample_rate=100), sample_rate)
    assert f"sample rate of {sample_rate} Hz is outside" in rejection(path).reason


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_nan_or_inf_samples(tmp_path, bad_value):
    audio = sine(440, 1.5)
    audio[0, 1000] = bad_value
    path = write_audio(tmp_path / "broken.wav", audio, subtype="FLOAT")
    assert "invalid samples (NaN or infinity)" in rejection(path).reason


def test_the_isolated_worker_passes_rejections_back(tmp_path):
    path = tmp_path / "-garbage.wav"
    path.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    with pytest.raises(StemError, match=r"^-garbage\.wav: it is not a readable audio file"):
        validate_stem(path)


@pytest.mark.parametrize("worker_code, timeout_s, reason", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", 30, "the decoder crashed."),
    ("raise MemoryError", 30, "the decoder failed."),
    ("import time; time.sleep(30)", 0.5, "decoding took longer than 0.5 s."),
])
def test_a_crashing_or_hanging_decoder_becomes_a_stem_error(tmp_path, monkeypatch, worker_code, timeout_s, reason):
    path = write_audio(tmp_path / "evil.ogg", sine(440, 1.5))
    monkeypatch.setattr(decode, "_worker_command", lambda *args, **kwargs: [sys.executable, "-c", worker_code])
    with pytest.raises(StemError) as caught:
        load_audio(path, timeout_s=timeout_s)
    assert (caught.value.name, caught.value.reason) == ("evil.ogg", reason)


def test_the_decode_worker_does_not_import_torch(tmp_path):
    path = write_audio(tmp_path / "a.wav", sine(440, 1.5))
    code = ("import sys; from mixing.audio.decode import main; "
            f"main([{str(path)!r}, '--name', 'a.wav', '--out-dir', {str(tmp_path)!r}]); "
            "print('torch' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], env=decode._worker_env(), capture_output=True,
                               text=True, check=True)
    assert completed.stdout.strip() == "False"
    assert (tmp_path / "result.json").exists()
