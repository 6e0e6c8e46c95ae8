"""Decode one untrusted audio file to float32, at :data:`mixing.SAMPLE_RATE` or another chosen rate.

WAV, FLAC, AIFF, CAF, OGG and MP3 go through libsndfile (soundfile), read in
blocks; M4A, AAC and FLACs that do not state their length go through ffmpeg,
called with a forced demuxer, a duration cap and a timeout. Either way the header (or ffprobe's report) is checked
before any decoding, so a FLAC claiming 2^36 frames is refused without
allocating memory; the decoded samples are then checked and resampled with
soxr (high quality).

Decoders can crash on hostile files (libvorbis has segfaulted here), so
:func:`decode_isolated` runs :func:`decode_file` in a child interpreter::

    python -m mixing.audio.decode PATH --name NAME --out-dir DIR [--max-duration-s S] [--timeout-s S] [--keep-audio]

which writes ``DIR/result.json`` and, with ``--keep-audio``, ``DIR/audio.npy``.
A crash, a hang or a memory blow-up then becomes a StemError for that file.
This module imports no torch, so the child starts in about 0.2 s.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from mixing import SAMPLE_RATE
from mixing.audio.names import AUDIO_EXTENSIONS, FFMPEG_EXTENSIONS
from mixing.audio.validate import MAX_DURATION_S, check_duration, check_header, check_samples
from mixing.errors import StemError

logger = logging.getLogger(__name__)

DECODE_TIMEOUT_S = 120.0
_PROBE_TIMEOUT_S = 15.0
_BLOCK_FRAMES = 1 << 16
# libsndfile's SF_COUNT_MAX: the length is not in the header (a FLAC written to a pipe).
# libsndfile then fails on the seek soundfile makes after each read, so ffmpeg decodes those.
_SF_UNKNOWN_FRAMES = 2**63 - 1
# Forcing the demuxer keeps ffmpeg away from playlist and concat formats, which can
# make it open other files or URLs named inside an upload.
_FFMPEG_DEMUXERS = {".m4a": "mov", ".aac": "aac", ".flac": "flac"}
_SUPPORTED = "WAV, FLAC, AIFF, OGG, MP3 or M4A"


@dataclass(frozen=True)
class StemInfo:
    """What decoding learned about one accepted file (before resampling, except ``duration_s``)."""

    name: str
    source_sample_rate_hz: int
    channels: int
    duration_s: float
    peak_dbfs: float


@dataclass(frozen=True)
class DecodedStem:
    """``audio``: float32 ``(channels, samples)`` at ``sample_rate_hz``, or None when only validated."""

    info: StemInfo
    audio: np.ndarray | None
    sample_rate_hz: int = SAMPLE_RATE


def decode_file(path: str | os.PathLike, *, name: str | None = None, max_duration_s: float = MAX_DURATION_S,
                sample_rate_hz: int | None = SAMPLE_RATE) -> DecodedStem:
    """Decode, check and resample one file in this process to ``sample_rate_hz`` (None: keep the file's
    own rate). Raises StemError.

    ``name`` is the user's file name, used in errors and to pick the decoder by
    its extension (an upload may be stored under another name); it defaults to
    the file's own name.
    """
    name = name or Path(path).name
    extension = Path(name).suffix.lower()
    if extension not in AUDIO_EXTENSIONS:
        shown = f"'{extension}'" if extension else "a file without an extension"
        raise StemError(name, f"its format ({shown}) is not supported; use {_SUPPORTED}.")
    read = None if extension in FFMPEG_EXTENSIONS else _read_soundfile(path, name, max_duration_s)
    if read is None:
        if extension not in _FFMPEG_DEMUXERS:
            raise StemError(name, "its header does not state its length; export it again.")
        read = _read_ffmpeg(path, name, _FFMPEG_DEMUXERS[extension], max_duration_s)
    interleaved, source_rate_hz = read
    check_duration(name, len(interleaved) / source_rate_hz, max_duration_s=max_duration_s)
    level_dbfs = check_samples(name, interleaved)
    target_rate_hz = int(sample_rate_hz or source_rate_hz)
    audio = _resample(interleaved, source_rate_hz, target_rate_hz)
    info = StemInfo(name=name, source_sample_rate_hz=int(source_rate_hz), channels=audio.shape[0],
                    duration_s=audio.shape[1] / target_rate_hz, peak_dbfs=level_dbfs)
    return DecodedStem(info=info, audio=audio, sample_rate_hz=target_rate_hz)


def _read_soundfile(path, name: str, max_duration_s: float) -> tuple[np.ndarray, int] | None:
    """``(frames, channels)`` float32 and the file's rate, read in blocks up to the duration cap.

    None when the header does not state the length.
    """
    try:
        file = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, OSError):
        raise StemError(name, "it is not a readable audio file (corrupt or in an unsupported format).") from None
    with file:
        if file.frames == _SF_UNKNOWN_FRAMES:
            return None
        check_header(name, sample_rate_hz=file.samplerate, channels=file.channels, frames=file.frames,
                     max_duration_s=max_duration_s)
        # Headers can understate the length; stop one block past the cap instead of trusting them.
        max_frames = math.ceil(max_duration_s * file.samplerate)
        blocks, frames_read = [], 0
        try:
            while frames_read <= max_frames:
                block = file.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if not len(block):
                    break
                blocks.append(block)
                frames_read += len(block)
        except (sf.LibsndfileError, RuntimeError):
            raise StemError(name, "it could not be decoded (the file is corrupt or truncated).") from None
    if not blocks:
        raise StemError(name, "it contains no audio (zero frames).")
    return np.concatenate(blocks), file.samplerate


def _read_ffmpeg(path, name: str, demuxer: str, max_duration_s: float) -> tuple[np.ndarray, int]:
    """Probe with ffprobe, then decode with ffmpeg to ``(frames, channels)`` float32 at the file's rate."""
    url = "file:" + str(Path(path).resolve())
    probe = _run_tool(name, ["ffprobe", "-v", "error", "-f", demuxer, "-select_streams", "a:0",
                             "-show_entries", "stream=sample_rate,channels,duration:format=duration",
                             "-of", "json", url], _PROBE_TIMEOUT_S)
    try:
        report = json.loads(probe)
        streams = report.get("streams") or []
        if not streams:
            raise StemError(name, "it has no audio stream.")
        stream = streams[0]
        sample_rate_hz, channels = int(stream["sample_rate"]), int(stream["channels"])
        duration_s = float(stream.get("duration") or report.get("format", {}).get("duration") or "nan")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StemError(name, "it is not a readable audio file (corrupt or in an unsupported format).") from None
    frames = round(duration_s * sample_rate_hz) if math.isfinite(duration_s) else None
    check_header(name, sample_rate_hz=sample_rate_hz, channels=channels, frames=frames,
                 max_duration_s=max_duration_s)
    # -t caps the output whatever the container claims; -ac/-ar pin the layout if the stream changes midway.
    pcm = _run_tool(name, ["ffmpeg", "-nostdin", "-v", "error", "-f", demuxer, "-i", url, "-map", "0:a:0",
                           "-t", f"{max_duration_s + 1:.3f}", "-ac", str(channels), "-ar", str(sample_rate_hz),
                           "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"], DECODE_TIMEOUT_S)
    samples = np.frombuffer(pcm, dtype="<f4")
    frames_read = len(samples) // channels
    return samples[: frames_read * channels].reshape(frames_read, channels), sample_rate_hz


def _run_tool(name: str, command: list[str], timeout_s: float) -> bytes:
    try:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise StemError(name, f"decoding took longer than {timeout_s:g} s.") from None
    if completed.returncode != 0:
        logger.info("%s failed on %s: %s", command[0], name, completed.stderr.decode(errors="replace")[-2000:])
        raise StemError(name, "it is not a readable audio file (corrupt or in an unsupported format).")
    return completed.stdout


def _resample(interleaved: np.ndarray, sample_rate_hz: int, target_rate_hz: int) -> np.ndarray:
    """``(frames, channels)`` at ``sample_rate_hz`` -> contiguous float32 ``(channels, samples)`` at
    ``target_rate_hz``."""
    if sample_rate_hz != target_rate_hz:
        interleaved = soxr.resample(interleaved, sample_rate_hz, target_rate_hz, quality="HQ")
    return np.array(interleaved.T, dtype=np.float32, order="C")  # a copy: ffmpeg's bytes are read-only


def decode_isolated(path: str | os.PathLike, *, name: str | None = None, max_duration_s: float = MAX_DURATION_S,
                    timeout_s: float = DECODE_TIMEOUT_S, keep_audio: bool = True,
                    sample_rate_hz: int | None = SAMPLE_RATE) -> DecodedStem:
    """:func:`decode_file` in a child interpreter; its crash or hang becomes a StemError for this file.

    The audio comes back through a temporary ``.npy`` file; ``keep_audio=False``
    only validates, and returns ``audio=None``.
    """
    name = name or Path(path).name
    with tempfile.TemporaryDirectory(prefix="mixref-decode-") as out_dir:
        command = _worker_command(Path(path).resolve(), name=name, max_duration_s=max_duration_s,
                                  timeout_s=timeout_s, out_dir=out_dir, keep_audio=keep_audio,
                                  sample_rate_hz=sample_rate_hz)
        # A session of its own, so that a timeout also kills the ffmpeg the worker may have started.
        worker = subprocess.Popen(command, env=_worker_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, stderr = worker.communicate(timeout=timeout_s)
        except BaseException as error:  # a timeout, or the caller being interrupted: leave no worker behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()
            if isinstance(error, subprocess.TimeoutExpired):
                raise StemError(name, f"decoding took longer than {timeout_s:g} s.") from None
            raise
        result_path = Path(out_dir) / "result.json"
        if worker.returncode != 0 or not result_path.exists():
            logger.error("decode worker for %s exited with %s: %s", name, worker.returncode,
                         stderr.decode(errors="replace")[-2000:])
            raise StemError(name, "the decoder crashed." if worker.returncode < 0 else "the decoder failed.")
        result = json.loads(result_path.read_text())
        if "reason" in result:
            raise StemError(name, result["reason"])
        audio = np.load(Path(out_dir) / "audio.npy") if keep_audio else None
    return DecodedStem(info=StemInfo(**result["info"]), audio=audio, sample_rate_hz=result["sample_rate_hz"])


def _worker_command(path: Path, *, name: str, max_duration_s: float, timeout_s: float, out_dir: str,
                    keep_audio: bool, sample_rate_hz: int | None) -> list[str]:
    # "--name=..." so that a file name starting with "-" is not read as an option.
    command = [sys.executable, "-m", "mixing.audio.decode", str(path), f"--name={name}", f"--out-dir={out_dir}",
               f"--max-duration-s={max_duration_s!r}", f"--timeout-s={timeout_s!r}",
               f"--sample-rate-hz={sample_rate_hz or 0}"]
    return [*command, "--keep-audio"] if keep_audio else command


def _worker_env() -> dict[str, str]:
    package_root = str(Path(__file__).resolve().parents[2])
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    # One BLAS thread: the worker does no linear algebra, and thread pools slow its start.
    return {**os.environ, "PYTHONPATH": python_path, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the decode worker: writes ``result.json`` (``info`` or a rejection ``reason``)."""
    parser = argparse.ArgumentParser(prog="python -m mixing.audio.decode", description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--name", required=True, help="the user's file name, for errors and the format")
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--max-duration-s", type=float, default=MAX_DURATION_S)
    parser.add_argument("--timeout-s", type=float, help="end this process after so long, even if its parent died")
    parser.add_argument("--keep-audio", action="store_true", help="also write audio.npy")
    parser.add_argument("--sample-rate-hz", type=int, default=SAMPLE_RATE, help="resample to this rate (0: keep)")
    args = parser.parse_args(argv)
    if args.timeout_s:
        signal.alarm(math.ceil(args.timeout_s) + 1)
    try:
        decoded = decode_file(args.path, name=args.name, max_duration_s=args.max_duration_s,
                              sample_rate_hz=args.sample_rate_hz or None)
    except StemError as error:
        result = {"reason": error.reason}
    else:
        if args.keep_audio:
            np.save(args.out_dir / "audio.npy", decoded.audio)
        result = {"info": asdict(decoded.info), "sample_rate_hz": decoded.sample_rate_hz}
    (args.out_dir / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
