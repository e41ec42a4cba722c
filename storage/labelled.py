"""Labelled hand images, in the uniform form of ``../shared/data/labelled/manifest.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class LabelledDataError(ValueError):
    """A labelled manifest or image that cannot be used; the message names the file."""


@dataclass(frozen=True)
class LabelledSample:
    id: str
    source: str
    image_path: Path
    hand_side: str | None
    keypoints: np.ndarray  # (21, 2) pixels
    visible: np.ndarray  # (21,) bool
    synthetic: bool
    K: np.ndarray | None = None  # (3, 3) where the manifest gives it
    keypoints_3d: np.ndarray | None = None  # (21, 3) camera frame, metres, where given

    @property
    def source_name(self) -> str:
        """Short dataset name: 'freihand', 'CMUHand', 'coco', ... (a file's folder name)."""
        parts = self.source.split(" (")[0].rstrip("/").split("/")
        is_file = Path(parts[-1]).suffix in {".json", ".txt", ".csv", ".xml"}
        return parts[-2] if is_file and len(parts) > 1 else parts[-1]

    def load_rgb(self) -> np.ndarray:
        bgr = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise LabelledDataError(f"{self.image_path}: not a readable image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_labelled_manifest(path: str | Path) -> list[LabelledSample]:
    """Samples of a labelled manifest; image paths resolved against the manifest's folder."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        samples = data["samples"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise LabelledDataError(f"{path}: not a labelled manifest ({exc})") from exc
    result = []
    for index, sample in enumerate(samples):
        try:
            keypoints = np.asarray(sample["keypoints_2d"], dtype=np.float64)
            if keypoints.shape != (21, 3):
                raise ValueError(f"keypoints_2d has shape {keypoints.shape}, not (21, 3)")
            result.append(LabelledSample(
                id=str(sample["id"]), source=str(sample.get("source", "?")),
                image_path=path.parent / sample["image"], hand_side=sample.get("hand_side"),
                keypoints=keypoints[:, :2], visible=keypoints[:, 2] > 0,
                synthetic=bool(sample.get("synthetic", False)),
                K=np.asarray(sample["K"], dtype=np.float64) if sample.get("K") else None,
                keypoints_3d=_joints_3d_metres(sample),
            ))
        except (KeyError, ValueError) as exc:
            raise LabelledDataError(f"{path}: sample {index} is malformed ({exc})") from exc
    return result


_UNITS = {"m": 1.0, "mm": 1e-3, "cm": 1e-2}


def _joints_3d_metres(sample: dict) -> np.ndarray | None:
    if not sample.get("keypoints_3d"):
        return None
    unit = sample.get("keypoints_3d_unit", "m")
    if unit not in _UNITS:
        raise ValueError(f"keypoints_3d_unit {unit!r} is not one of {sorted(_UNITS)}")
    joints = np.asarray(sample["keypoints_3d"], dtype=np.float64)[:, :3] * _UNITS[unit]
    if joints.shape != (21, 3):
        raise ValueError(f"keypoints_3d has shape {joints.shape}, not (21, 3)")
    return joints
