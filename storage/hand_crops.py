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


@dataclass
class LabelTargets:
    """A job's own labels as training targets for the hands of a ``StoredHands.index``."""

    joints: np.ndarray  # (N, 21, 3) metres, the crop's camera (left hands mirrored like it)
    weight: np.ndarray  # (N,) the label's quality; 0 where there is no label to learn from


def read_label_targets(store: DatasetStore, index: pd.DataFrame, min_quality: float
                       ) -> LabelTargets:
    """The reconstruct stage's labels of the hands in ``index`` (video_id, frame, slot), for
    training on them (a round of fit and training): only labels fitted to a detection
    (not ``interpolated``) with quality at least ``min_quality`` carry weight, as the export
    flags the others low quality, and not on the self-check's hidden frames (where
    ``selfcheck_px`` was measured), so that a round's self-check is not scored on frames its
    network was taught. A video without complete labels gives no targets."""
    joints = np.zeros((len(index), 21, 3), np.float32)
    weight = np.zeros(len(index), np.float32)
    for video_id, rows in index.groupby("video_id", sort=False):
        labels = store.stage(video_id, "reconstruct")
        if labels is None or not labels.attrs.get("complete"):
            continue
        frame, slot, at = (rows["frame"].to_numpy(), rows["slot"].to_numpy(),
                           rows.index.to_numpy())
        mirror = np.where(store.stage(video_id, "detect").read("mirrored")[frame, slot][:, None,
                                                                                      None],
                          [-1.0, 1.0, 1.0], 1.0)
        points = labels.read("joints_3d")[frame, slot] * mirror
        quality = labels.read("quality")[frame, slot]
        usable = (labels.read("present")[frame, slot] & ~labels.read("interpolated")[frame, slot]
                  & (quality >= min_quality) & np.isfinite(points).all((-1, -2)))
        if "selfcheck_px" in labels.group:
            usable &= ~np.isfinite(labels.read("selfcheck_px")[frame, slot])
        joints[at] = np.where(usable[:, None, None], np.nan_to_num(points), 0)
        weight[at] = np.where(usable, quality, 0)
    return LabelTargets(joints, weight)
