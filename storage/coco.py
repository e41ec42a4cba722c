"""COCO-WholeBody-style hand keypoints: one image per frame with hands, one person
annotation per image carrying ``lefthand_kpts`` / ``righthand_kpts`` (21 x [x, y, score]),
their boxes, ``*_valid`` flags and handlabel's ``*_low_quality`` flags; body, face and foot
fields are present and empty, as in COCO-WholeBody files for people whose body is not
annotated. Meant for hand-keypoint loaders that read the ``*hand_*`` fields (mmpose's
``CocoWholeBodyHandDataset``, xtcocotools' ``keypoints_lefthand``/``keypoints_righthand``
evaluation; both tested); body-keypoint loaders skip these people (``num_keypoints`` 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd

BODY_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                  "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                  "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                  "right_ankle")


def visibility_flags(row) -> np.ndarray:
    """(21,) COCO's v per joint: 2 visible, 1 labelled but not seen (``hands.parquet``'s
    ``visible``; labels written before it was estimated count as visible)."""
    visible = row.get("visible")
    if visible is None:
        return np.full(21, 2.0)
    return np.where(np.asarray(visible, dtype=bool), 2.0, 1.0)


def _box(points: np.ndarray) -> list[float]:
    low, high = points.min(0), points.max(0)
    return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]


def _union(boxes: list[list[float]]) -> list[float]:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return [x0, y0, x1 - x0, y1 - y0]


def coco_wholebody(hands: pd.DataFrame, images: dict[tuple[str, int], dict]) -> dict:
    """``hands``: the hand table (one row per frame and hand); ``images``: per (video_id,
    frame) the image record (file_name, width, height). Keypoint scores are the detector's
    joint confidence times the hand's quality score."""
    coco = {"info": {"description": "handlabel pseudo-labels (COCO-WholeBody hand fields)"},
            "licenses": [], "images": [], "annotations": [],
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": list(BODY_KEYPOINTS), "skeleton": []}]}
    for image_id, ((video_id, frame), group) in enumerate(
            hands.groupby(["video_id", "frame"], sort=True), start=1):
        coco["images"].append({"id": image_id, **images[video_id, int(frame)],
                               "video_id": video_id, "frame_index": int(frame)})
        annotation = {"id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                      "segmentation": [], "keypoints": [0] * 51, "num_keypoints": 0,
                      "face_kpts": [0.0] * 204, "face_box": [0.0] * 4, "face_valid": False,
                      "foot_kpts": [0.0] * 18, "foot_valid": False}
        boxes = []
        for side in ("left", "right"):
            row = group[group["side"] == side]
            if row.empty:
                annotation[f"{side}hand_kpts"] = [0.0] * 63
                annotation[f"{side}hand_kpts_score"] = [0.0] * 21
                annotation[f"{side}hand_box"] = [0.0] * 4
                annotation[f"{side}hand_valid"] = False
                annotation[f"{side}hand_low_quality"] = False
                continue
            row = row.iloc[0]
            points = np.asarray(row["keypoints_2d"], dtype=float).reshape(21, 2)
            score = np.asarray(row["confidence"], dtype=float) * float(row["quality"])
            annotation[f"{side}hand_kpts"] = np.column_stack(
                [points, visibility_flags(row)]).ravel().tolist()
            annotation[f"{side}hand_kpts_score"] = score.round(4).tolist()
            annotation[f"{side}hand_box"] = _box(points)
            annotation[f"{side}hand_valid"] = True
            annotation[f"{side}hand_low_quality"] = bool(row["low_quality"])
            boxes.append(_box(points))
        annotation["bbox"] = _union(boxes)
        annotation["area"] = annotation["bbox"][2] * annotation["bbox"][3]
        coco["annotations"].append(annotation)
    return coco
