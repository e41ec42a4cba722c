"""Evaluate a trained S2HAND model on labelled images, next to the detector that taught it.

Each labelled image goes through the pipeline's own path: the detector finds the hand, the
crop is cut around the detected keypoints (mirrored when the detector calls it a left hand),
and the network predicts from that crop. Teacher (detector) and student (the network's
projected 3D joints) are scored on the same detected hands against the labels; 3D errors are
given where the labels have 3D joints and K.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from handlabel.config import CameraConfig, DetectConfig
from handlabel.models.camera import intrinsics_from_fov
from handlabel.models.crops import crop_affine, crop_image, crop_intrinsics, square_box, to_crop
from handlabel.models.detectors import HandDetector
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.metrics.keypoints2d import hand_size, joint_errors, pck, pck_auc
from handlabel.models.metrics.keypoints3d import procrustes_errors, root_relative_errors
from handlabel.models.network import S2HandNet
from handlabel.models.refine import refine
from handlabel.models.training.prediction import predict_crops
from handlabel.storage.labelled import LabelledSample

from .evaluate_keypoints import match

# the pipeline's own crop geometry and fallback camera (their configured defaults)
CROP_SIZE, CROP_MARGIN = DetectConfig().crop_size, DetectConfig().crop_margin
ASSUMED_FOV = CameraConfig().assumed_fov_deg


def _crop(sample: LabelledSample, rgb: np.ndarray, keypoints: np.ndarray, left: bool):
    K = sample.K if sample.K is not None else intrinsics_from_fov(rgb.shape[1], rgb.shape[0],
                                                                   ASSUMED_FOV)
    center, side = square_box(keypoints, CROP_MARGIN)
    affine = crop_affine(center, side, CROP_SIZE, left)
    return crop_image(rgb, affine, CROP_SIZE), crop_intrinsics(K, affine, left), affine


def _to_image(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    return points @ np.linalg.inv(full)[:2, :2].T + np.linalg.inv(full)[:2, 2]


def evaluate_model(samples: list[LabelledSample], detector: HandDetector, net: S2HandNet,
                   input_size: int, progress: Callable[[int, int], None] | None = None,
                   refine_steps: int = 0) -> pd.DataFrame:
    """One row per labelled joint of each detected hand: teacher and student errors (px and
    hand sizes), and 3D errors (mm) where the sample has 3D."""
    crops, records = [], []
    for index, sample in enumerate(samples):
        rgb = sample.load_rgb()
        hand = match(detector.detect_image(rgb), sample)
        if hand is not None:
            left = hand.handedness == "left"
            image, K, affine = _crop(sample, rgb, hand.keypoints, left)
            crops.append((image, K, to_crop(hand.keypoints, affine), hand.confidence))
            records.append((sample, hand, affine, left))
        if progress:
            progress(index + 1, len(samples))
    if not records:
        return pd.DataFrame()
    images = torch.from_numpy(np.stack([c[0] for c in crops]))
    Ks = torch.from_numpy(np.stack([c[1] for c in crops])).float()
    prediction = predict_crops(net, images, Ks, input_size)
    if refine_steps:
        keypoints = torch.from_numpy(np.stack([c[2] for c in crops])).float()
        confidence = torch.from_numpy(np.stack([c[3] for c in crops])).float()
        prediction = refine(net.hand_model, prediction, keypoints, confidence, Ks,
                            model_limit_frames(net.hand_model), refine_steps)
    rows = []
    for i, (sample, hand, affine, left) in enumerate(records):
        student = _to_image(prediction.joints_2d[i].numpy(), affine)
        rows += _rows(sample, hand.keypoints, student, prediction.joints_3d[i].numpy(), left)
    return pd.DataFrame(rows)


def _rows(sample, teacher, student, joints_3d, left) -> list[dict]:
    size = hand_size(sample.keypoints, sample.visible)
    teacher_px = joint_errors(teacher, sample.keypoints, sample.visible)
    student_px = joint_errors(student, sample.keypoints, sample.visible)
    error_3d = pa_3d = np.full(21, np.nan)
    if sample.keypoints_3d is not None:
        predicted = joints_3d * np.array([-1.0, 1.0, 1.0]) if left else joints_3d
        error_3d = root_relative_errors(predicted[None], sample.keypoints_3d[None])[0]
        pa_3d = procrustes_errors(predicted[None], sample.keypoints_3d[None])[0]
    return [{"id": sample.id, "source": sample.source_name, "joint": j,
             "teacher_px": teacher_px[j], "student_px": student_px[j],
             "teacher_norm": teacher_px[j] / size, "student_norm": student_px[j] / size,
             "mpjpe_mm": error_3d[j], "pa_mpjpe_mm": pa_3d[j]}
            for j in np.flatnonzero(sample.visible)]


def summarise_model(rows: pd.DataFrame) -> pd.DataFrame:
    """Per source and overall: hands, teacher/student EPE px, PCK@0.2, AUC; 3D means."""
    def summary(name: str, part: pd.DataFrame) -> dict:
        return {"source": name, "hands": part["id"].nunique(),
                "teacher_epe_px": part["teacher_px"].mean(),
                "student_epe_px": part["student_px"].mean(),
                "teacher_pck@0.2": pck(part["teacher_norm"].to_numpy()),
                "student_pck@0.2": pck(part["student_norm"].to_numpy()),
                "teacher_auc": pck_auc(part["teacher_norm"].to_numpy()),
                "student_auc": pck_auc(part["student_norm"].to_numpy()),
                "hands_3d": part.dropna(subset=["mpjpe_mm"])["id"].nunique(),
                "mpjpe_mm": part["mpjpe_mm"].mean(), "pa_mpjpe_mm": part["pa_mpjpe_mm"].mean()}
    if rows.empty:
        return pd.DataFrame()
    table = [summary(s, rows[rows["source"] == s]) for s in sorted(rows["source"].unique())]
    return pd.DataFrame([*table, summary("all", rows)])
