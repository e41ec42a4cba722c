"""Detect's own step for one video, once its chunks are in: which hand is which over the whole
video (``models/identity.py``), applied to the stored detections. A hand whose side changes
moves to the other slot, and its crop, crop keypoints and crop intrinsics are mirrored with
it (left hands' crops are mirrored: ``models/crops.py``). Only chunks with a moved hand are
rewritten. The decision reads nothing the step writes in a way it could change (tracklets
ignore slots; handedness moves with its hand), so a step cut short and run again finishes
the same repair."""

from __future__ import annotations

import numpy as np
from prefect import get_run_logger, task

from handlabel.config import DetectConfig
from handlabel.models.crops import switch_side
from handlabel.models.identity import hand_sides, slot_sources
from handlabel.models.tracking import N_SLOTS, SLOT_SIDES
from handlabel.storage.stage_arrays import StageArrays
from handlabel.storage.store import DatasetStore

STAGE = "detect"
LEFT = SLOT_SIDES.index("left")


def repair_identity(store: DatasetStore, video_id: str, config: DetectConfig) -> int:
    """Decide every hand's side over the video and move the hands whose side changed;
    returns how many hand-frames moved. Does nothing when ``config.identity`` is off or a
    chunk is missing."""
    arrays = store.stage(video_id, STAGE)
    if set(range(arrays.n_chunks)) - arrays.done_chunks():
        return 0  # a chunk is missing: the stage's finish fails the video, a rerun repairs
    if not config.identity:
        arrays.update_attrs(moved_sides=0)
        return 0
    present = arrays.read("present")
    sides, convention = hand_sides(present, arrays.read("box"), arrays.read("handedness"))
    sources = slot_sources(sides)
    moved = (sources >= 0) & (sources != np.arange(N_SLOTS)[None])
    video = store.video(video_id)
    K = np.asarray(video.attrs["K"], dtype=np.float64)
    for chunk in np.unique(np.flatnonzero(moved.any(1)) // video.chunk_frames):
        start = int(chunk) * video.chunk_frames
        stop = min(start + video.chunk_frames, len(present))
        _move(arrays, start, stop, sources[start:stop], K)
    arrays.update_attrs(moved_sides=int(moved.sum()),
                        right_hand_on=("right" if convention > 0 else "left"))
    return int(moved.sum())


def _move(arrays: StageArrays, start: int, stop: int, sources: np.ndarray, K: np.ndarray
          ) -> None:
    """Rewrite frames [start, stop) with slot s holding the hand of slot ``sources[:, s]``."""
    group = arrays.group
    frames = np.arange(stop - start)
    values = {}
    for key in group.array_keys():
        if key == "chunk_done":
            continue
        value = arrays.read(key, start, stop)
        values[key] = np.full_like(value, group[key].fill_value)
        for slot in range(N_SLOTS):
            has = sources[:, slot] >= 0
            values[key][frames[has], slot] = value[frames[has], sources[has, slot]]
    for t, slot in np.argwhere((sources >= 0) & (sources != np.arange(N_SLOTS))):
        _mirror(values, t, slot, K)
    for key, value in values.items():
        group[key][start:stop] = value


def _mirror(values: dict, t: int, slot: int, K: np.ndarray) -> None:
    """A hand that changed side: its crop, crop keypoints, crop K and flag for the new side."""
    mirror = bool(slot == LEFT)
    values["crops"][t, slot], values["crop_keypoints"][t, slot], values["crop_K"][t, slot] = \
        switch_side(values["crops"][t, slot], values["crop_keypoints"][t, slot],
                    values["box"][t, slot], K, mirror)
    values["mirrored"][t, slot] = mirror


@task(name="detect-identity", task_run_name="detect-identity {video_id}")
def repair_identity_task(store_url: str, video_id: str, config: DetectConfig) -> int:
    moved = repair_identity(DatasetStore(store_url), video_id, config)
    get_run_logger().info("%s: %d hand-frames changed side", video_id, moved)
    return moved
