"""A stage's per-frame arrays for one video (``videos/<id>/<stage>/``), written chunk by chunk.

Every array has the video's frame count as its first axis and the video's chunking along it.
As for frames, a chunk counts as written only once its ``chunk_done`` flag is set, after its
values are stored; the group's ``config_hash`` attribute says which configuration wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import zarr

from .chunked import ChunkedGroup
from .integrity import DEFAULT_COMPRESSORS, array_codecs, checked_read


@dataclass(frozen=True)
class ArraySpec:
    tail: tuple[int, ...]  # shape after the frame axis
    dtype: str
    fill_value: float | int | bool = 0
    serializer: object | None = None  # a Zarr array-to-bytes codec; None: zarr's default


class StageArrays(ChunkedGroup):

    @classmethod
    def create(cls, parent: zarr.Group, name: str, *, n_frames: int, chunk_frames: int,
               spec: dict[str, ArraySpec], attrs: dict) -> StageArrays:
        """A new, empty set of arrays (replacing any group of that name)."""
        group = parent.create_group(name, overwrite=True, attributes={**attrs, "complete": False})
        for key, item in spec.items():
            compressors = DEFAULT_COMPRESSORS if item.serializer is None else None
            codecs = array_codecs(item.serializer, compressors)
            group.create_array(key, shape=(n_frames, *item.tail),
                               chunks=(chunk_frames, *item.tail), dtype=item.dtype,
                               fill_value=item.fill_value, **codecs)
        cls.create_done_record(group, -(-n_frames // chunk_frames))
        return cls(group)

    def copy_to(self, parent: zarr.Group, name: str, attrs: dict) -> StageArrays:
        """A copy of these arrays (values, chunking, codecs) as ``parent/name``, replacing
        any group there, with ``attrs``; it reads as not complete until the copy is whole."""
        group = parent.create_group(name, overwrite=True, attributes={**attrs, "complete": False})
        for key, array in self.group.arrays():
            copy = group.create_array(key, shape=array.shape, chunks=array.chunks,
                                      dtype=array.dtype, fill_value=array.fill_value,
                                      filters=array.filters, serializer=array.serializer,
                                      compressors=array.compressors)
            copy[...] = checked_read(array, 0, None)
        group.attrs["complete"] = bool(attrs.get("complete", False))
        return StageArrays(group)

    @property
    def n_chunks(self) -> int:
        return int(self.group["chunk_done"].shape[0])

    def write_chunk(self, index: int, start: int, values: dict[str, np.ndarray]) -> None:
        """Store one chunk's values of every array, then record the chunk as done."""
        for key, value in values.items():
            self.group[key][start : start + len(value)] = value
        self.mark_done(index)

    def write_all(self, values: dict[str, np.ndarray]) -> None:
        """Store whole arrays at once (stages that work on a whole video) and mark all done."""
        for key, value in values.items():
            self.group[key][:] = value
        self.group["chunk_done"][:] = True

    def read(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Values of frames [start, stop); a damaged chunk raises DamagedChunkError."""
        return checked_read(self.group[key], start, stop)
