"""The reconstructed hands as one table: a row per frame and hand, array columns as lists
(Parquet list columns, numpy arrays in pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .frames import frame_interval
from .store import DatasetStore

SIDES = ("left", "right")  # the slots of the detect stage
_PER_HAND = {  # table column -> (stage, array)
    "keypoints_detected": ("detect", "keypoints"),
    "detection_score": ("detect", "score"),
    "box": ("detect", "box"),
    "joint_weight": ("weight", "joint"),
    "keypoints_2d": ("reconstruct", "keypoints_2d"),
    "joints_3d": ("reconstruct", "joints_3d"),
    "global_orient": ("reconstruct", "global_orient"),
    "hand_pose": ("reconstruct", "hand_pose"),
    "betas": ("reconstruct", "betas"),
    "skeleton": ("reconstruct", "skeleton"),
    "translation": ("reconstruct", "translation"),
    "scale": ("reconstruct", "scale"),
    "light": ("reconstruct", "light"),
    "reprojection_px": ("reconstruct", "reprojection_px"),
    "teacher_residual": ("reconstruct", "teacher_residual"),
    "quality": ("reconstruct", "quality"),
    "interpolated": ("reconstruct", "interpolated"),
    "visible": ("reconstruct", "visible"),
    "track": ("reconstruct", "track"),
}


def video_hand_table(store: DatasetStore, video_id: str, flag_below: float = 0.0,
                     min_track_s: float = 0.0) -> pd.DataFrame:
    """Every reconstructed hand of a video: ids, time, side, detection, weights and the 3D
    reconstruction (joints in the video's camera frame, metres; 2D in frame pixels).

    Hands the fit filled between detections have ``interpolated`` set (and no detection);
    hands whose quality score is under ``flag_below``, or whose track lasts less than
    ``min_track_s`` (``short_track``), have ``low_quality`` set."""
    present = store.stage(video_id, "reconstruct").read("present")
    frames, slots = np.nonzero(present)
    video = store.video(video_id)
    row = store.manifest.get(video_id)
    table = pd.DataFrame({
        "video_id": video_id, "video_name": row["name"], "frame": frames,
        "time_s": video.timestamps()[frames], "side": np.array(SIDES)[slots],
    })
    cache: dict[tuple[str, str], np.ndarray] = {}
    for column, (stage, key) in _PER_HAND.items():
        arrays = store.stage(video_id, stage)
        if key not in arrays.group:  # labels of a version that did not store it
            continue
        if (stage, key) not in cache:
            cache[stage, key] = arrays.read(key)
        values = cache[stage, key][frames, slots]
        if column == "keypoints_detected":
            table["confidence"] = list(values[..., 2].astype(np.float32))
            values = values[..., :2]
        table[column] = list(values.reshape(len(values), -1)) if values.ndim > 1 else values
    table["short_track"] = _short_tracks(table, video.timestamps(), min_track_s)
    table["low_quality"] = (table["quality"] < flag_below) | table["short_track"]
    return table


def _short_tracks(table: pd.DataFrame, times: np.ndarray, min_track_s: float) -> np.ndarray:
    """(rows,) whether each hand's track lasts less than ``min_track_s``: its frames times
    the video's frame interval (labels written before tracks were numbered: none)."""
    if "track" not in table or not len(table) or min_track_s <= 0:
        return np.zeros(len(table), bool)
    interval = frame_interval(times)
    frames = table.groupby("track")["frame"].transform("size").to_numpy()
    return (frames * interval < min_track_s - 1e-6) & (table["track"].to_numpy() >= 0)


def video_summary(table: pd.DataFrame, n_frames: int) -> dict:
    """One row of the per-video summary table."""
    detected = table[~table["interpolated"]] if len(table) else table
    return {
        "frames": n_frames, "hands": len(detected),
        "interpolated_hands": len(table) - len(detected),
        "low_quality_hands": int(table["low_quality"].sum()) if len(table) else 0,
        "frames_with_hands": int(table["frame"].nunique()),
        "left_hands": int((table["side"] == "left").sum()),
        "right_hands": int((table["side"] == "right").sum()),
        "mean_confidence": float(np.mean([c.mean() for c in detected["confidence"]]))
        if len(detected) else None,
        "median_reprojection_px": float(table["reprojection_px"].median()) if len(table)
        else None,
        "mean_quality": float(table["quality"].mean()) if len(table) else None,
    }
