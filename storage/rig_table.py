"""A rig's labelled hands as one table: a row per rig frame and hand, with the 3D in the
world frame and, per camera, in that camera's frame with its pixels (Parquet list columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .hand_table import SIDES
from .store import DatasetStore

_WORLD = ("joints_world", "global_orient_world", "hand_pose", "betas", "skeleton", "scale",
          "quality", "interpolated")
_PER_CAMERA = {"joints_camera": "joints_{}", "keypoints_2d": "keypoints_2d_{}",
               "reprojection_px": "reprojection_px_{}"}


def rig_hand_table(store: DatasetStore, name: str) -> pd.DataFrame:
    """Columns: rig, rig_frame, side, frame_<camera> (the video frame of each camera), the
    world-frame parameters (metres), joints_<camera> (metres), keypoints_2d_<camera> (pixels
    of that camera's video, lens distortion applied), reprojection_px_<camera>, and the
    triangulated joints (world, metres) with their confidence."""
    attrs = dict(store.rig(name).attrs)
    labels, tri = store.rig_stage(name, "labels"), store.rig_stage(name, "triangulate")
    frames, hands = np.nonzero(labels.read("present"))
    table = pd.DataFrame({"rig": name, "rig_frame": frames, "side": np.array(SIDES)[hands]})
    for camera in attrs["cameras"]:
        table[f"frame_{camera}"] = frames + attrs["offsets"][camera]
    for key in _WORLD:
        _add(table, key, labels.read(key)[frames, hands])
    for key, column in _PER_CAMERA.items():
        values = labels.read(key)[frames, hands]
        for index, camera in enumerate(attrs["cameras"]):
            _add(table, column.format(camera), values[:, index])
    _add(table, "joints_triangulated", tri.read("joints")[frames, hands])
    _add(table, "triangulated_confidence", tri.read("confidence")[frames, hands])
    return table


def _add(table: pd.DataFrame, column: str, values: np.ndarray) -> None:
    table[column] = list(values.reshape(len(values), -1)) if values.ndim > 1 else values
