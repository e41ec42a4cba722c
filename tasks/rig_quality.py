"""What a rig says about the labels (METHOD.md section 5), for the report:

- the held-out-view error of each camera's own monocular labels: its 3D joints carried into
  another camera with the calibration, projected through that camera's lens, and compared
  with that camera's detections (px, weighted by their joint weights). It measures the depth
  and scale errors no single view can see;
- the rig labels' reprojection residual in each camera. The rig fit used every camera's
  detections, so this is in-sample: how closely the fit follows them, not an error on
  held-out evidence, and never set beside the held-out figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from handlabel.models.tracking import N_SLOTS
from handlabel.storage.store import DatasetStore

from .rig_reconstruct import RigMembers


def rig_quality(store: DatasetStore, name: str) -> pd.DataFrame:
    """One row per ordered camera pair: the held-out-view error of the source camera's
    labels in the other camera."""
    rig = RigMembers(store, name)
    slots = store.rig_stage(name, "triangulate").read("view_slot")
    cameras = range(len(rig.cameras))
    own = {c: _camera_labels(rig, c) for c in cameras}
    rows = []
    for source in cameras:
        for target in cameras:
            if source == target:
                continue
            errors = _held_out(rig, own, slots, source, target)
            rows.append({"rig": name, "from": rig.cameras[source], "to": rig.cameras[target],
                         "frames": len(errors),
                         "held-out px (mean)": float(np.mean(errors)) if errors else np.nan,
                         "held-out px (median)": float(np.median(errors)) if errors else np.nan})
    return pd.DataFrame(rows)


def rig_in_sample(store: DatasetStore, name: str) -> pd.DataFrame:
    """One row per camera: the median reprojection residual of the rig's labels on that
    camera's detections, which the rig fit was fitted to (in-sample)."""
    rig = RigMembers(store, name)
    labels = store.rig_stage(name, "labels")
    residual = labels.read("reprojection_px")
    detected = labels.read("present") & ~labels.read("interpolated")
    return pd.DataFrame([{"rig": name, "camera": camera, "hands": int(detected.sum()),
                          "in-sample px (median)": float(np.nanmedian(residual[:, :, c][detected]))
                          if detected.any() else np.nan}
                         for c, camera in enumerate(rig.cameras)])


def _camera_labels(rig: RigMembers, camera: int) -> dict:
    return {"joints": rig.read(camera, "reconstruct", "joints_3d"),
            "labelled": rig.read(camera, "reconstruct", "present")
            & ~rig.read(camera, "reconstruct", "interpolated"),
            "keypoints": rig.read(camera, "detect", "keypoints")[..., :2].astype(float),
            "weights": rig.read(camera, "weight", "joint")}


def _held_out(rig: RigMembers, own: dict, slots: np.ndarray, source: int, target: int
              ) -> list[float]:
    R, t = rig.geometry.between(source, target)
    errors = []
    for frame in range(rig.n_frames):
        for hand in range(N_SLOTS):
            a, b = slots[frame, hand, source], slots[frame, hand, target]
            if a < 0 or b < 0 or not own[source]["labelled"][frame, a]:
                continue
            carried = own[source]["joints"][frame, a].astype(float) @ R.T + t
            projected = rig.geometry.project(carried, target)
            weights = own[target]["weights"][frame, b]
            distance = np.linalg.norm(projected - own[target]["keypoints"][frame, b], axis=-1)
            usable = np.isfinite(distance) & (weights > 0)
            if usable.any():
                errors.append(float((distance * weights)[usable].sum() / weights[usable].sum()))
    return errors
