"""What every per-video group of the store shares: attributes and the chunk completion record.

A chunk counts as written only once its flag in the group's ``chunk_done`` array is set, and
writers set the flag after the chunk's data (the completion record comes last). Each flag is
its own Zarr chunk, so its own object: chunk tasks in separate processes write different
objects and never read-modify-write a shared one (which loses flags when two interleave).
"""

from __future__ import annotations

import numpy as np
import zarr

from .integrity import array_codecs

DONE_CHUNK_BLOCK = 1  # flags per Zarr chunk (object) of the chunk_done array: one
STEP_PROGRESS = "step_progress"  # attribute: [frames done, frames to do] of a per-video step


class ChunkedGroup:
    def __init__(self, group: zarr.Group):
        self.group = group

    @staticmethod
    def create_done_record(group: zarr.Group, n_chunks: int) -> None:
        group.create_array("chunk_done", shape=(n_chunks,), chunks=(DONE_CHUNK_BLOCK,),
                           dtype="bool", dimension_names=("chunk",), fill_value=False,
                           **array_codecs())

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs)

    def update_attrs(self, **values) -> None:
        self.group.attrs.update(values)

    def record_step_progress(self, done: int, total: int) -> None:
        """How far a video's own step (reconstruct's sequence fit) has got, in frames: read
        by the live progress display, which has no other channel from the workers."""
        self.group.attrs[STEP_PROGRESS] = [int(done), int(total)]

    def step_progress(self) -> tuple[int, int] | None:
        """(frames done, frames to do) of the video's own step; None before it starts."""
        value = self.group.attrs.get(STEP_PROGRESS)
        return (int(value[0]), int(value[1])) if value else None

    def done_chunks(self) -> set[int]:
        return {int(i) for i in np.flatnonzero(self.group["chunk_done"][:])}

    def mark_done(self, index: int) -> None:
        done = self.group["chunk_done"]
        if done.shape[0] <= index:
            done.resize((index + 1,))
        done[index] = True
