"""A corpus of malformed uploads, made in memory: every one must be refused by name and reason.

``single_files()`` are files a user might send one by one (truncated headers of every format, wrong
extensions, empty files, silence, absurd rates and channel counts, NaN/inf, headers that lie about
their length, decompression bombs as FLAC). ``hostile_zips()`` are archives with the name of each file
the answer must refuse (the archive itself, or the entries inside it).
"""
import functools
import io
import struct
import zipfile
from dataclasses import dataclass

import numpy as np
import soundfile

RATE_HZ = 44100
# Soundfile formats with an extension we accept; each is truncated at these byte offsets.
_FORMATS = {
    "wav16.wav": ("WAV", "PCM_16"), "float.wav": ("WAV", "FLOAT"), "song.flac": ("FLAC", "PCM_16"),
    "song.aiff": ("AIFF", "PCM_16"), "song.ogg": ("OGG", "VORBIS"), "song.caf": ("CAF", "PCM_16"),
    "song.mp3": ("MP3", "MPEG_LAYER_III"), "rf64.wav": ("RF64", "PCM_16"), "w64.wav": ("W64", "PCM_16"),
}
_TRUNCATE_AT_BYTES = [1, 4, 8, 12, 20, 28, 36, 44, 64, 100]
_EXTENSIONS = [".wav", ".flac", ".aiff", ".ogg", ".mp3", ".caf", ".m4a", ".aac"]


@dataclass(frozen=True)
class Hostile:
    """``name``: the file name sent; ``content``: its bytes; ``refused``: the names the answer must reject."""

    name: str
    content: bytes
    refused: tuple[str, ...] = ()

    @property
    def refused_names(self) -> tuple[str, ...]:
        return self.refused or (self.name,)


def _noise(duration_s: float, channels: int = 1, rate_hz: int = RATE_HZ) -> np.ndarray:
    """``(frames, channels)`` float32 noise at -20 dBFS RMS from a fixed seed."""
    generator = np.random.default_rng(7)
    return (0.1 * generator.standard_normal((round(duration_s * rate_hz), channels))).astype(np.float32)


def encoded(audio: np.ndarray, format_name: str, subtype: str, rate_hz: int = RATE_HZ) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate_hz, format=format_name, subtype=subtype)
    return buffer.getvalue()


def wav_header(*, channels: int, rate_hz: int, bits: int = 16, format_tag: int = 1, data_bytes: int) -> bytes:
    """A canonical 44-byte RIFF/WAVE header whose data chunk claims ``data_bytes``."""
    block_align = channels * bits // 8
    # Masked, not refused: a header may lie in any field.
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate_hz, (rate_hz * block_align) & 0xFFFFFFFF,
                      block_align & 0xFFFF, bits)
    riff_bytes = min(4 + 8 + len(fmt) + 8 + data_bytes, 0xFFFFFFFF)
    return (b"RIFF" + struct.pack("<I", riff_bytes) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", min(data_bytes, 0xFFFFFFFF)))


def wav(samples: np.ndarray, *, rate_hz: int = RATE_HZ, channels: int = 1, float_samples: bool = False) -> bytes:
    """A WAV written by hand (any rate and channel count): int16, or float32 with ``float_samples``."""
    data = samples.astype("<f4" if float_samples else "<i2").tobytes()
    header = wav_header(channels=channels, rate_hz=rate_hz, bits=32 if float_samples else 16,
                        format_tag=3 if float_samples else 1, data_bytes=len(data))
    return header + data


def flac_claiming(total_frames: int, rate_hz: int = RATE_HZ) -> bytes:
    """A FLAC holding only a STREAMINFO block that claims ``total_frames`` (36-bit field) and no audio."""
    packed = (rate_hz << 44) | (0 << 41) | (15 << 36) | total_frames  # 20 + 3 + 5 + 36 bits, mono, 16-bit
    info = struct.pack(">HH", 4096, 4096) + bytes(6) + packed.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info


def rf64_claiming(total_frames: int) -> bytes:
    """An RF64 (64-bit WAV) whose ds64 chunk claims ``total_frames`` mono 16-bit frames, with 0.5 s of data.

    libsndfile trusts the file's length over the claim, so this decodes to 0.5 s (too short).
    """
    data = (_noise(0.5)[:, 0] * 32767).astype("<i2").tobytes()
    ds64 = struct.pack("<QQQI", 0xFFFFFFFF, total_frames * 2, total_frames, 0)
    fmt = struct.pack("<HHIIHH", 1, 1, RATE_HZ, RATE_HZ * 2, 2, 16)
    return (b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF) + data)


def _truncated() -> list[Hostile]:
    audio = _noise(1.5)
    files = []
    for name, (format_name, subtype) in _FORMATS.items():
        whole = encoded(audio, format_name, subtype)
        files += [Hostile(f"cut{cut}_{name}", whole[:cut]) for cut in _TRUNCATE_AT_BYTES]
    return files


def _wrong_extensions() -> list[Hostile]:
    good_wav = encoded(_noise(1.5), "WAV", "PCM_16")
    good_flac = encoded(_noise(1.5), "FLAC", "PCM_16")
    text = b"tempo 120, key of A minor\n" * 40
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    pdf = b"%PDF-1.4\n" + bytes(300)
    files = [Hostile(f"notes{extension}", text) for extension in _EXTENSIONS]
    files += [Hostile(f"cover{extension}", png) for extension in _EXTENSIONS]
    files += [Hostile(f"sheet{extension}", pdf) for extension in _EXTENSIONS]
    files += [Hostile(f"bass{extension}", good_wav) for extension in (".m4a", ".aac")]
    files += [Hostile(f"keys{extension}", good_flac) for extension in (".m4a", ".aac")]
    files += [Hostile(name, good_wav) for name in ("bass.txt", "bass", "bass.exe", "bass.wav.exe", "bass.WAV.json",
                                                   "bass.mid", "bass.zip")]
    return files


def _empty() -> list[Hostile]:
    return [Hostile(f"empty{extension}", b"") for extension in [*_EXTENSIONS, ".zip"]]


def _silent() -> list[Hostile]:
    zeros = np.zeros((2 * RATE_HZ, 1), dtype=np.float32)
    lsb = np.zeros((2 * RATE_HZ, 1), dtype=np.float32)
    lsb[::1000] = 1 / 32768  # one bit of dither now and then: still below -90 dBFS
    return [
        Hostile("silence16.wav", wav(zeros[:, 0])),
        Hostile("silence_float.wav", wav(zeros[:, 0], float_samples=True)),
        Hostile("silence.flac", encoded(zeros, "FLAC", "PCM_16")),
        Hostile("silence.aiff", encoded(zeros, "AIFF", "PCM_24")),
        Hostile("silence.ogg", encoded(zeros, "OGG", "VORBIS")),
        Hostile("lsb_dither.wav", encoded(lsb, "WAV", "PCM_16")),
        Hostile("silence_stereo.flac", encoded(np.zeros((2 * RATE_HZ, 2), np.float32), "FLAC", "PCM_24")),
    ]


def _absurd_rates() -> list[Hostile]:
    files = []
    for rate_hz in (1, 2, 100, 1000, 4000, 7999, 384001, 768000, 1_000_000, 10_000_000, 2**31 - 1):
        frames = min(rate_hz * 2, 2 * RATE_HZ)
        samples = (_noise(frames / RATE_HZ)[:, 0] * 32767)
        files.append(Hostile(f"rate_{rate_hz}hz.wav", wav(samples, rate_hz=rate_hz)))
    files.append(Hostile("rate_0hz.wav", wav_header(channels=1, rate_hz=0, data_bytes=4000) + bytes(4000)))
    return files


def _channel_counts() -> list[Hostile]:
    files = []
    for channels in (0, 3, 4, 5, 6, 8, 16, 64, 255, 256, 1000, 1024, 65535):
        frames = 2 * RATE_HZ if channels <= 8 else 1000
        samples = (_noise(frames * max(channels, 1) / RATE_HZ)[:, 0] * 32767)
        files.append(Hostile(f"channels_{channels}.wav", wav(samples, channels=channels)))
        if 0 < channels <= 8:
            files.append(Hostile(f"channels_{channels}.flac",
                                 encoded(_noise(2.0, channels=channels), "FLAC", "PCM_16")))
    return files


def _invalid_samples() -> list[Hostile]:
    files = []
    for label, value in (("nan", np.nan), ("inf", np.inf), ("minus_inf", -np.inf)):
        for where in ("start", "middle", "all"):
            samples = _noise(2.0)[:, 0].copy()
            if where == "all":
                samples[:] = value
            else:
                samples[0 if where == "start" else len(samples) // 2] = value
            files.append(Hostile(f"{label}_{where}.wav", wav(samples, float_samples=True)))
    doubles = _noise(2.0).astype(np.float64)
    doubles[100] = np.nan
    files.append(Hostile("nan_double.wav", encoded(doubles, "WAV", "DOUBLE")))
    return files


def _lying_headers() -> list[Hostile]:
    twenty_hours = 20 * 3600 * RATE_HZ
    one_second = (_noise(1.0)[:, 0] * 32767).astype("<i2").tobytes()
    return [
        Hostile("frames_2e36.flac", flac_claiming(2**36 - 1)),
        Hostile("twenty_hours.flac", flac_claiming(twenty_hours)),
        Hostile("zero_frames.flac", flac_claiming(0)),
        Hostile("frames_2e36.wav", rf64_claiming(2**36)),
        Hostile("twenty_hours_rf64.wav", rf64_claiming(twenty_hours)),
        Hostile("four_gigabytes.wav",
                wav_header(channels=1, rate_hz=RATE_HZ, data_bytes=0xFFFFFFFF) + one_second[:100]),
        Hostile("twenty_hours.wav", wav_header(channels=2, rate_hz=RATE_HZ, data_bytes=twenty_hours * 4)),
        Hostile("zero_frames.wav", wav_header(channels=1, rate_hz=RATE_HZ, data_bytes=0)),
        Hostile("odd_block.wav", wav_header(channels=1, rate_hz=RATE_HZ, bits=13, data_bytes=1000) + bytes(1000)),
        Hostile("no_fmt.wav", b"RIFF" + struct.pack("<I", 100) + b"WAVE" + b"data" + struct.pack("<I", 88) + bytes(88)),
    ]


def _flac_bombs() -> list[Hostile]:
    """Silence compresses to almost nothing: 20 min refused from the header."""
    mono_8k = 8000
    return [
        Hostile("bomb_20min.flac", encoded(np.zeros((20 * 60 * mono_8k, 1), np.float32), "FLAC", "PCM_16", mono_8k)),
    ]


@functools.cache  # made once per test session: the bombs take seconds to encode
def single_files() -> tuple[Hostile, ...]:
    """Files every endpoint refuses."""
    return (*_truncated(), *_wrong_extensions(), *_empty(), *_absurd_rates(), *_channel_counts(),
            *_invalid_samples(), *_lying_headers(), *_flac_bombs())


@functools.cache
def silent_files() -> tuple[Hostile, ...]:
    """Silence in every format, and 11 min of it that compresses to almost nothing: a stem that is kept (and left
    out of the mix), a reference that is refused."""
    mono_8k = 8000
    return (*_silent(), Hostile("bomb_11min_silent.flac",
                                encoded(np.zeros((11 * 60 * mono_8k, 1), np.float32), "FLAC", "PCM_16", mono_8k)))


CORRUPT_WAV = b"RIFF\x00\x00\x00\x00WAVEfmt this is not audio"


def zip_of(entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16)
    return info


def _lying_sizes(data: bytes) -> bytes:
    """A ZIP whose one entry unpacks to ``data`` but whose headers claim 1 kB."""
    archive = bytearray(zip_of([("liar.wav", data)]))
    claimed = struct.pack("<I", 1024)
    archive[22:26] = claimed  # local header: uncompressed size
    central = archive.rindex(b"PK\x01\x02")
    archive[central + 24:central + 28] = claimed  # central directory: uncompressed size
    return bytes(archive)


@functools.cache
def hostile_zips(*, max_unpacked_bytes: int) -> tuple[Hostile, ...]:
    """Archives; ``max_unpacked_bytes`` is the cap the test sets, so the bombs declare just past it."""
    bomb = bytes(max_unpacked_bytes + 1)
    return (
        Hostile("traversal.zip", zip_of([("../../evil.wav", CORRUPT_WAV), ("/etc/abs.wav", CORRUPT_WAV),
                                         ("..\\..\\back.wav", CORRUPT_WAV)]), ("evil.wav", "abs.wav", "back.wav")),
        Hostile("symlink.zip", zip_of([(_symlink("link.wav"), b"/etc/passwd")]), ("link.wav",)),
        Hostile("nested.zip", zip_of([("inner.zip", zip_of([("a.wav", CORRUPT_WAV)]))]), ("inner.zip",)),
        Hostile("thousands.zip", zip_of([(f"{index}.txt", b"") for index in range(3000)], zipfile.ZIP_STORED)),
        Hostile("bogus_999.zip", zip_of([(f"{index:03}.wav", CORRUPT_WAV) for index in range(999)])),
        Hostile("too_many_stems.zip", zip_of([(f"{index:02}.wav", CORRUPT_WAV) for index in range(65)])),
        Hostile("bomb.zip", zip_of([("bomb.wav", bomb)])),
        Hostile("bomb_split.zip", zip_of([(f"part{index}.wav", bomb[: len(bomb) // 3 + 1]) for index in range(3)])),
        Hostile("liar.zip", _lying_sizes(bytes(1 << 20)), ("liar.wav",)),
        Hostile("not_a_zip.zip", b"PK\x03\x04 this is not a zip archive" * 10),
        Hostile("truncated.zip", zip_of([("a.wav", CORRUPT_WAV)])[:40]),
        Hostile("no_audio.zip", zip_of([("notes.txt", b"tempo 120"), ("cover.png", b"\x89PNG")]),
                ("notes.txt", "cover.png")),
        Hostile("only_folders.zip", zip_of([("Song/", b""), ("Song/Stems/", b"")])),
        Hostile("wav_named_zip.zip", encoded(_noise(1.5), "WAV", "PCM_16")),
        Hostile("corrupt_entries.zip", zip_of([("kick.wav", CORRUPT_WAV), ("snare.flac", b"fLaC" + bytes(40)),
                                               ("hat.mp3", bytes(500))]), ("kick.wav", "snare.flac", "hat.mp3")),
    )
