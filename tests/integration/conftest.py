"""Audio made in code for the web and worker tests."""
import io

import numpy as np
import pytest
import soundfile

SAMPLE_RATE_HZ = 44100


def sine_wav_bytes(*, amplitude: float, frequency_hz: float = 997.0, duration_s: float = 3.0,
                   sample_rate_hz: int = SAMPLE_RATE_HZ) -> bytes:
    """A mono 16-bit WAV of a sine; BS.1770 reads it at 20 log10(amplitude) - 3.01 LUFS."""
    times_s = np.arange(round(duration_s * sample_rate_hz)) / sample_rate_hz
    buffer = io.BytesIO()
    soundfile.write(buffer, amplitude * np.sin(2 * np.pi * frequency_hz * times_s), sample_rate_hz,
                    format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def loudness_lufs_of(wav: bytes) -> float:
    """pyloudnorm's integrated loudness of a WAV, read back as the worker reads it."""
    import pyloudnorm

    samples, sample_rate_hz = soundfile.read(io.BytesIO(wav), dtype="float32")
    return pyloudnorm.Meter(sample_rate_hz).integrated_loudness(samples)


@pytest.fixture
def sine_wav() -> bytes:
    return sine_wav_bytes(amplitude=0.1)
