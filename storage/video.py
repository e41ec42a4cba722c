"""Sequential video decoding with PyAV: no seeking, variable-frame-rate safe, rotation honoured."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from .fs import filesystem, is_local

# A container that declares N frames but yields fewer than this share of them is truncated.
TRUNCATION_TOLERANCE = 0.98


class VideoDecodeError(Exception):
    """A file that is not a readable video; the message names the file and the cause."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    """What the container says, and the size frames will have once rotated and resized."""

    width: int
    height: int
    source_width: int
    source_height: int
    rotation: int
    fps: float
    declared_frames: int
    codec: str


@dataclass(frozen=True)
class FrameChunk:
    index: int
    start: int
    frames: np.ndarray  # (n, H, W, 3) uint8
    timestamps: np.ndarray  # (n,) float64 seconds from the stream's start


@contextlib.contextmanager
def _open_container(url: str) -> Iterator[av.container.InputContainer]:
    fs, path = filesystem(url)
    if fs.size(path) == 0:
        raise VideoDecodeError(url, "the file is empty")
    handle = None if is_local(url) else fs.open(path, "rb")
    try:
        container = av.open(handle or path, mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        if handle is not None:
            handle.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise VideoDecodeError(url, f"not a video FFmpeg can read ({reason})") from exc
    try:
        if not container.streams.video:
            raise VideoDecodeError(url, "the file holds no video stream")
        yield container
    finally:
        container.close()
        if handle is not None:
            handle.close()


def _output_size(width: int, height: int, max_long_side: int | None) -> tuple[int, int]:
    """Size after an optional resize of the long side; even numbers keep codecs happy."""
    if not max_long_side or max(width, height) <= max_long_side:
        return width, height
    scale = max_long_side / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _rotation_of(frame: av.VideoFrame) -> int:
    """Counterclockwise quarter turns (in degrees) the display matrix asks for."""
    return round(frame.rotation / 90.0) * 90 % 360


def _fps_of(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe_video(url: str, max_long_side: int | None = None) -> VideoInfo:
    """Read the header and the first frame: size, rotation, fps, declared frame count."""
    with _open_container(url) as container:
        stream = container.streams.video[0]
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise VideoDecodeError(url, f"the first frame does not decode ({exc})") from exc
        if first is None:
            raise VideoDecodeError(url, "the video stream holds no frames")
        rotation = _rotation_of(first)
        width, height = _output_size(first.width, first.height, max_long_side)
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            width=width,
            height=height,
            source_width=first.height if rotation in (90, 270) else first.width,
            source_height=first.width if rotation in (90, 270) else first.height,
            rotation=rotation,
            fps=_fps_of(stream),
            declared_frames=int(stream.frames or 0),
            codec=stream.codec_context.name,
        )


def _to_rgb(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    if (frame.width, frame.height) == size:
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation="AREA")


def _frame_time(frame: av.VideoFrame, index: int, fps: float) -> float:
    if frame.time is not None:
        return float(frame.time)
    return index / fps if fps else float(index)


def iter_frames(
    url: str, max_long_side: int | None = None, threads: int = 0
) -> Iterator[tuple[np.ndarray, float]]:
    """Every frame in decode order as (H, W, 3) uint8 RGB, upright, and its time in seconds."""
    with _open_container(url) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.codec_context.thread_count = threads
        fps = _fps_of(stream)
        size: tuple[int, int] | None = None
        start_time: float | None = None
        count = 0
        try:
            for frame in container.decode(stream):
                if size is None:
                    size = _output_size(frame.width, frame.height, max_long_side)
                    turns = _rotation_of(frame) // 90
                    start_time = _frame_time(frame, 0, fps)
                rgb = _to_rgb(frame, size)
                if turns:
                    rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
                yield rgb, _frame_time(frame, count, fps) - start_time
                count += 1
        except av.FFmpegError as exc:
            raise VideoDecodeError(url, f"decoding failed after {count} frames ({exc})") from exc
        _check_complete(url, count, int(stream.frames or 0))


def _check_complete(url: str, decoded: int, declared: int) -> None:
    if decoded == 0:
        raise VideoDecodeError(url, "the video stream holds no frames")
    if declared and decoded < TRUNCATION_TOLERANCE * declared:
        raise VideoDecodeError(
            url, f"truncated: decoded {decoded} of the {declared} frames the container declares"
        )


def iter_chunks(
    url: str, chunk_frames: int, max_long_side: int | None = None, threads: int = 0
) -> Iterator[FrameChunk]:
    """Frames grouped into consecutive chunks of ``chunk_frames`` (the last may be shorter).

    The chunks' frame arrays rotate through two preallocated buffers: fresh 100+ MB arrays
    per chunk cost more in page faults than decoding (docs/performance.md). A chunk's
    ``frames`` therefore stay valid only until the generator has produced the next chunk
    after it; a consumer that keeps them longer must copy them.
    """
    buffers: list[np.ndarray] = []
    times: list[float] = []
    index = 0
    for rgb, t in iter_frames(url, max_long_side, threads):
        if not buffers:
            buffers = [np.empty((chunk_frames, *rgb.shape), np.uint8) for _ in range(2)]
        buffers[index % 2][len(times)] = rgb
        times.append(t)
        if len(times) == chunk_frames:
            yield FrameChunk(index, index * chunk_frames, buffers[index % 2], np.asarray(times))
            times = []
            index += 1
    if times:
        frames = buffers[index % 2][: len(times)]
        yield FrameChunk(index, index * chunk_frames, frames, np.asarray(times))
