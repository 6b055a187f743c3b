"""Video files: the frames a clip samples, decoded without decoding (or converting) the whole video.

Two decoders: torchcodec (``pip install -e '.[video]'``), which seeks to the sampled frames, and PyAV, the
fallback where torchcodec is not installed or cannot load its FFmpeg libraries. PyAV decodes in order up
to the last sampled frame and converts only the sampled ones to RGB. Frames are numbered by decoding order
(0-based), so a variable-frame-rate video is sampled by frame count like every other; ``decoder()`` says
which decoder this machine uses (``selfy-lab describe`` prints it).

torchcodec finds frame i by the i-th smallest presentation timestamp, so on a video where two frames share
a timestamp (or one has none) it returns a neighbour of the frame asked for. Such videos are therefore read
with PyAV's sequential decoding even where torchcodec loads; telling them apart costs one demuxing pass
(no decoding).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

import av
import numpy as np

from ..core.errors import DataError


@lru_cache(maxsize=1)
def decoder() -> str:
    """``torchcodec`` when it is installed and its FFmpeg libraries load, else ``pyav``."""
    try:  # optional: torchcodec, the seeking decoder (the [video] extra)
        from torchcodec._core import ops  # noqa: F401  (loads the FFmpeg libraries, or mocks the ops)
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # not installed, or a build that does not match this torch
        return "pyav"
    return "torchcodec" if getattr(ops, "ffmpeg_major_version", 1) is not None else "pyav"


def read_sampled(path: Path, pick: Callable[[int], np.ndarray], where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Open ``path``, learn its frame count n, ask ``pick(n)`` for the 0-based frame indices to sample (any
    shape, any order, repeats allowed) and return (frames (K, H, W, 3) uint8 of the distinct indices in
    increasing order, the inverse map giving each picked index's row). Errors name ``where`` (list line)."""
    prefix = f"{where}: " if where else ""
    if not Path(path).is_file():
        raise DataError(f"{prefix}video {path} does not exist")
    if decoder() == "torchcodec" and _timestamps_are_distinct(path, prefix):
        return _read_torchcodec(path, pick, prefix)
    return _read_pyav(path, pick, prefix)


def read_picked(path: Path, pick: Callable[[int], np.ndarray], where: str = "") -> np.ndarray:
    """Like :func:`read_sampled`, but the frames of every picked index in the picked shape:
    (*shape of pick(n), H, W, 3) uint8."""
    shape: list[tuple[int, ...]] = []

    def keep(n: int) -> np.ndarray:
        idx = np.asarray(pick(n))
        shape.append(idx.shape)
        return idx

    frames, inverse = read_sampled(path, keep, where)
    return frames[inverse.reshape(shape[0])]


def _unique(idx: np.ndarray, n: int, path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise DataError(f"{prefix}video {path} has {n} frames, frame {int(idx.max())} was asked for")
    return np.unique(idx, return_inverse=True)


def _packet_timestamps(container, stream, path, prefix) -> list:
    """The presentation timestamps of the stream's packets in decoding order (None where a packet has
    none), by demuxing only. Where the container keeps no frame count (WebM), a header whose duration
    promises far more frames than the packets hold means a truncated file."""
    pts = [packet.pts for packet in container.demux(stream) if packet.size]
    if stream.frames < 1:
        rate = stream.average_rate or stream.guessed_rate
        expected = container.duration * rate / 1e6 if container.duration and rate else 0
        if len(pts) < 0.9 * expected - 1:
            raise DataError(f"{prefix}video {path} holds {len(pts)} frames, its header promises about "
                            f"{round(expected)} (a truncated file?)")
    return pts


def _timestamps_are_distinct(path, prefix) -> bool:
    """Whether every frame of the video stream has its own presentation timestamp, the condition for
    seeking by index to land on the frame asked for. A file PyAV cannot demux is left to
    :func:`_read_pyav`, which reports it."""
    try:
        with av.open(str(path)) as container:
            pts = _packet_timestamps(container, container.streams.video[0], path, prefix)
    except (av.error.FFmpegError, OSError, ValueError, IndexError):
        return False
    return None not in pts and len(set(pts)) == len(pts)


def _read_torchcodec(path, pick, prefix):
    from torchcodec.decoders import VideoDecoder  # optional: the [video] extra, present when decoder() chose it

    try:
        dec = VideoDecoder(str(path), seek_mode="exact")  # scans the file: frame i is the i-th decoded frame
        n = dec.metadata.num_frames or 0
        if n < 1:
            raise DataError(f"{prefix}video {path} has no frames")
        wanted, inverse = _unique(pick(n), n, path, prefix)
        frames = dec.get_frames_at([int(i) for i in wanted]).data  # (K, C, H, W) uint8
    except DataError:
        raise
    except Exception as e:  # torchcodec raises RuntimeError / ValueError for broken files
        raise DataError(f"{prefix}cannot decode video {path} ({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
    return frames.permute(0, 2, 3, 1).numpy(), inverse


def _read_pyav(path, pick, prefix):
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            n = stream.frames  # from the container's index; 0 where it keeps none (WebM)
            if n < 1:
                n = len(_packet_timestamps(container, stream, path, prefix))
                container.seek(0)
            if n < 1:
                raise DataError(f"{prefix}video {path} has no frames")
            wanted, inverse = _unique(pick(n), n, path, prefix)
            out, k, i = [], 0, -1
            for i, frame in enumerate(container.decode(stream)):
                if i == wanted[k]:
                    out.append(frame.to_ndarray(format="rgb24"))
                    k += 1
                    if k == len(wanted):
                        break
    except DataError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
        raise DataError(f"{prefix}cannot decode video {path} ({type(e).__name__})") from None
    if len(out) < len(wanted):
        raise DataError(f"{prefix}video {path} ends after {i + 1} decodable frames, before frame "
                        f"{int(wanted[len(out)])} of the {n} its container lists (a truncated file?)")
    return np.stack(out), inverse
