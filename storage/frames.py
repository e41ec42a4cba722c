"""One video's arrays in the store: frames, timestamps and the per-chunk completion record.

A chunk counts as written only once its flag in ``chunk_done`` is set, and the flag is set
after the frames and timestamps of that chunk are stored; an interrupted ingest therefore
leaves chunks that are either complete or not counted, and a resume redoes only the latter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from .chunked import ChunkedGroup
from .integrity import array_codecs, checked_read
from .video import FrameChunk
from .video_codec import H264FrameCodec

# zarr-python compares every written chunk with the fill value unless told not to; on video
# frames (never all-fill) that scan costs more than compressing them (see docs/performance.md).
_ARRAY_CONFIG = {"write_empty_chunks": True}


def frame_interval(times: np.ndarray) -> float:
    """A video's frame interval in seconds from its frame times (``VideoFrames.timestamps``):
    their median step, robust to variable frame rates' odd gaps; 0.0 for fewer than two.

    >>> frame_interval(np.array([0.0, 0.04, 0.08, 0.2, 0.24]))
    0.04
    """
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.0


def frame_codecs(codec: str, level: int = 0, crf: int = 18) -> dict:
    """Zarr v3 codecs for the frame chunks, by the name used in the configuration, as the
    ``serializer`` and ``compressors`` arguments of an array's creation (each chunk ending
    with its checksum, :mod:`.integrity`)."""
    if codec == "h264":
        return array_codecs(H264FrameCodec(crf=crf), None)
    if codec == "none":
        return array_codecs(None, None)
    if codec == "zstd":
        return array_codecs(None, (ZstdCodec(level=level),))
    if codec == "blosc-lz4":
        return array_codecs(None, (BloscCodec(cname="lz4", clevel=max(level, 0),
                                              shuffle="noshuffle"),))
    if codec == "blosc-zstd":
        return array_codecs(None, (BloscCodec(cname="zstd", clevel=max(level, 0),
                                              shuffle="shuffle"),))
    raise ValueError(f"unknown frame codec {codec!r}")


class VideoFrames(ChunkedGroup):
    """Frames ``(T, H, W, 3)`` uint8 in chunks of N frames, with timestamps and attributes."""

    @classmethod
    def create(
        cls,
        parent: zarr.Group,
        name: str,
        *,
        height: int,
        width: int,
        chunk_frames: int,
        codecs: dict,
        attrs: dict,
    ) -> VideoFrames:
        """A new, empty video group (replacing any group of that name); ``codecs`` as
        :func:`frame_codecs` gives them."""
        group = parent.create_group(name, overwrite=True, attributes=attrs)
        group.create_array(
            "frames",
            shape=(0, height, width, 3),
            chunks=(chunk_frames, height, width, 3),
            dtype="uint8",
            **codecs,
            dimension_names=("frame", "y", "x", "rgb"),
        )
        group.create_array(
            "timestamps", shape=(0,), chunks=(chunk_frames,), dtype="float64",
            dimension_names=("frame",), fill_value=np.nan, **array_codecs(),
        )
        cls.create_done_record(group, 0)
        return cls(group)

    @property
    def chunk_frames(self) -> int:
        return int(self.group["frames"].chunks[0])

    @property
    def n_frames(self) -> int:
        return int(self.group["frames"].shape[0])

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(height, width, 3) of the stored frames."""
        return tuple(self.frames_array.shape[1:])

    @property
    def n_chunks(self) -> int:
        return -(-self.n_frames // self.chunk_frames)

    @property
    def frames_array(self) -> zarr.Array:
        # The write-empty-chunks setting is per opened array, not stored: apply it on every open.
        return self.group["frames"].with_config(_ARRAY_CONFIG)

    def _grow(self, name: str, length: int) -> None:
        array = self.group[name]
        if array.shape[0] < length:
            array.resize((length, *array.shape[1:]))

    def write_chunk(self, chunk: FrameChunk) -> None:
        """Store one chunk, then record it as done (the record comes last)."""
        stop = chunk.start + len(chunk.frames)
        self._grow("frames", stop)
        self._grow("timestamps", stop)
        self.frames_array[chunk.start : stop] = chunk.frames
        self.group["timestamps"][chunk.start : stop] = chunk.timestamps
        self.mark_done(chunk.index)

    def write_chunks(
        self,
        chunks: Iterable[FrameChunk],
        skip: set[int] = frozenset(),
        on_chunk: Callable[[FrameChunk, bool], None] | None = None,
    ) -> int:
        """Write chunks while the next one is being decoded; returns the number of frames seen,
        which is also the arrays' final length (a longer array from an earlier run is cut).

        At most one write is in flight: chunk k's write ends before chunk k+1's starts, and
        the producer refills chunk k's buffer only after that, which is the contract that
        lets :func:`~handlabel.storage.video.iter_chunks` rotate two buffers.

        Chunks whose index is in ``skip`` are already stored and are not written again.
        ``on_chunk(chunk, written)`` is called once each chunk is settled, for progress.
        """
        n_frames = 0
        pending: Future | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zarr-writer") as pool:
            for chunk in chunks:
                n_frames = chunk.start + len(chunk.frames)
                if pending is not None:
                    pending.result()
                    pending = None
                written = chunk.index not in skip
                pending = pool.submit(self._settle, chunk, written, on_chunk)
            if pending is not None:
                pending.result()
        self._truncate(n_frames)
        return n_frames

    def _truncate(self, length: int) -> None:
        for name in ("frames", "timestamps"):
            array = self.group[name]
            array.resize((length, *array.shape[1:]))

    def _settle(self, chunk: FrameChunk, written: bool, on_chunk) -> None:
        if written:
            self.write_chunk(chunk)
        if on_chunk is not None:
            on_chunk(chunk, written)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        return checked_read(self.frames_array, start, stop)

    def timestamps(self) -> np.ndarray:
        return checked_read(self.group["timestamps"])
