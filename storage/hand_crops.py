"""The hands of a job as training samples: crops, crop keypoints, crop K, weights and the
detector's 3D, read from the detect and weight stages of the store (numpy; no torch here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .store import DatasetStore


@dataclass
class StoredHands:
    images: np.ndarray  # (N, S, S, 3) uint8, left hands mirrored
    keypoints: np.ndarray  # (N, 21, 2) crop pixels
    joint_weight: np.ndarray  # (N, 21) the weight stage's joint weights (confidence^2 based)
    sample_weight: np.ndarray  # (N,) photometric gate
    K: np.ndarray  # (N, 3, 3) crop intrinsics
    index: pd.DataFrame  # video_id, frame, slot of each hand
    world: np.ndarray  # (N, 21, 3) the detector's 3D, mirrored (x -> -x) like the crop
    world_confidence: np.ndarray  # (N, 21), 0 where the detector gave no 3D
    times: np.ndarray  # (N,) seconds: each hand's frame timestamp


def hand_index(store: DatasetStore, video_ids: list[str], min_joint_weight: float = 0.0
               ) -> pd.DataFrame:
    """(video_id, frame, slot) of every detected, weighted hand of these videos."""
    rows = []
    for video_id in video_ids:
        present = store.stage(video_id, "detect").read("present")
        weights = store.stage(video_id, "weight").read("joint")
        usable = present & (weights.mean(-1) >= min_joint_weight)
        frames, slots = np.nonzero(usable)
        rows.append(pd.DataFrame({"video_id": video_id, "frame": frames, "slot": slots}))
    if not rows:
        return pd.DataFrame(columns=["video_id", "frame", "slot"])
    return pd.concat(rows, ignore_index=True)


def sample_index(index: pd.DataFrame, max_samples: int | None, seed: int) -> pd.DataFrame:
    if max_samples is None or len(index) <= max_samples:
        return index
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(index), size=max_samples, replace=False))
    return index.iloc[keep].reset_index(drop=True)


def read_hands(store: DatasetStore, index: pd.DataFrame) -> StoredHands:
    """Load the hands listed in ``index`` (one read per video and array)."""
    parts = []
    for video_id, rows in index.groupby("video_id", sort=False):
        detect, weight = store.stage(video_id, "detect"), store.stage(video_id, "weight")
        first, last = int(rows["frame"].min()), int(rows["frame"].max()) + 1
        frame, slot = rows["frame"].to_numpy() - first, rows["slot"].to_numpy()

        def pick(arrays, key, frame=frame, slot=slot, first=first, last=last):
            return arrays.read(key, first, last)[frame, slot]

        mirror = np.where(pick(detect, "mirrored")[:, None, None], [-1.0, 1.0, 1.0], 1.0)
        world = pick(detect, "world") * mirror
        known = np.isfinite(world).all(-1)
        times = store.video(video_id).timestamps()[first:last][frame]
        parts.append((pick(detect, "crops"), pick(detect, "crop_keypoints"),
                      pick(weight, "joint"), pick(weight, "sample"), pick(detect, "crop_K"),
                      np.nan_to_num(world).astype(np.float32),
                      np.where(known, pick(detect, "world_confidence"), 0).astype(np.float32),
                      times))
    if not parts:
        raise ValueError(f"{store.url}: no usable hands to read")
    images, keypoints, joint, sample, K, world, world_confidence, times = (
        np.concatenate(a) for a in zip(*parts, strict=True))
    ordered = pd.concat([rows for _, rows in index.groupby("video_id", sort=False)],
                        ignore_index=True)
    return StoredHands(images, keypoints, joint, sample, K, ordered, world, world_confidence,
                       times)
