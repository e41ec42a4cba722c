"""Evaluate a trained S2HAND model on labelled images, next to the detector that taught it.

Each labelled image goes through the pipeline's own path: the detector finds the hand, the
crop is cut around the detected keypoints (mirrored when the detector calls it a left hand),
the network predicts from that crop, and (with ``fit``) the reconstruct stage's fit solves
the hand from that start, the detections and the detector's 3D, as a one-frame track.
Teacher (the detector's 2D, and its 3D placed in the camera by PnP), student (the network's
projected 3D joints) and fit are scored on the same detected hands against the labels; 3D
errors are given where the labels have 3D joints and K.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from handlabel.config import CameraConfig, DetectConfig, ReconstructConfig
from handlabel.models.camera import intrinsics_from_fov
from handlabel.models.crops import crop_affine, crop_image, crop_intrinsics, square_box, to_crop
from handlabel.models.detectors import HandDetection, HandDetector
from handlabel.models.fit.observe import track_observations
from handlabel.models.fit.quality import track_quality
from handlabel.models.fit.sequence import FitParameters
from handlabel.models.fit.track import solve_track
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.hand.sides import mirror_points
from handlabel.models.metrics.keypoints2d import (
    confidence_error_correlation,
    hand_size,
    joint_errors,
    pck,
    pck_auc,
)
from handlabel.models.metrics.keypoints3d import procrustes_errors, root_relative_errors
from handlabel.models.network import S2HandNet
from handlabel.models.refine import refine
from handlabel.models.training.prediction import predict_crops
from handlabel.storage.labelled import LabelledSample

from .evaluate_keypoints import match


def _crop(rgb: np.ndarray, K: np.ndarray, keypoints: np.ndarray, left: bool,
          detect: DetectConfig):
    """The crop the detect stage would cut with the user's crop size and margin."""
    center, side = square_box(keypoints, detect.crop_margin)
    affine = crop_affine(center, side, detect.crop_size, left)
    return crop_image(rgb, affine, detect.crop_size), crop_intrinsics(K, affine, left), affine


def _to_image(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    return points @ np.linalg.inv(full)[:2, :2].T + np.linalg.inv(full)[:2, 2]


def evaluate_model(samples: list[LabelledSample], detector: HandDetector, net: S2HandNet,
                   input_size: int, progress: Callable[[int, int], None] | None = None,
                   refine_steps: int = 0, reconstruct: ReconstructConfig | None = None,
                   detect: DetectConfig | None = None, camera: CameraConfig | None = None
                   ) -> pd.DataFrame:
    """One row per labelled joint of each detected hand: teacher, student and (with
    ``reconstruct``, whose fit and quality scales are used) fitted-label errors (px and hand
    sizes), and 3D errors (mm) where the sample has 3D. Crops are cut as ``detect`` says and
    a sample without K gets ``camera``'s assumed field of view (the user's config)."""
    detect, camera = detect or DetectConfig(), camera or CameraConfig()
    crops, records = [], []
    for index, sample in enumerate(samples):
        rgb = sample.load_rgb()
        hand = match(detector.detect_image(rgb), sample)
        if hand is not None:
            left = hand.handedness == "left"
            K_image = _camera(sample, rgb, camera.assumed_fov_deg)
            image, K, affine = _crop(rgb, K_image, hand.keypoints, left, detect)
            crops.append((image, K, to_crop(hand.keypoints, affine), hand.confidence))
            records.append((sample, hand, affine, left, K_image))
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
    for i, (sample, hand, affine, left, K) in enumerate(records):
        student = _to_image(prediction.joints_2d[i].numpy(), affine)
        joints = {"student": (student, mirror_points(prediction.joints_3d[i].numpy(), left))}
        obs, placed = track_observations(hand.keypoints[None], hand.confidence[None] ** 2,
                                         _world(hand), _world_confidence(hand),
                                         np.ones(1, bool), np.zeros(1), K, left)
        if np.isfinite(placed.numpy()).all():
            joints["teacher"] = (hand.keypoints, mirror_points(placed[0].numpy(), left))
        else:
            joints["teacher"] = (hand.keypoints, None)
        quality = np.nan
        if reconstruct is not None:
            fitted = _fit_one(net, prediction, i, obs, placed, reconstruct)
            if fitted is not None:
                joints["fit"] = (fitted[0], mirror_points(fitted[1], left))
                quality = fitted[2]
        rows += [{**row, "fit_quality": quality} for row in _rows(sample, joints)]
    return pd.DataFrame(rows)


def _camera(sample: LabelledSample, rgb: np.ndarray, fov_deg: float) -> np.ndarray:
    return sample.K if sample.K is not None else intrinsics_from_fov(rgb.shape[1], rgb.shape[0],
                                                                     fov_deg)


def _world(hand: HandDetection) -> np.ndarray:
    return (hand.world if hand.world is not None else np.full((21, 3), np.nan))[None]


def _world_confidence(hand: HandDetection) -> np.ndarray:
    return (hand.world_confidence if hand.world_confidence is not None else np.zeros(21))[None]


def _fit_one(net: S2HandNet, prediction, i: int, obs, placed, config: ReconstructConfig):
    """The reconstruct stage's fit of one detected hand, as a one-frame track, from the
    network's prediction (already in the fit's camera: the crop is mirrored for left hands)
    and the teacher-based start; (21, 2) image pixels, (21, 3) joints in the fit's camera and
    the quality score the reconstruct stage would give it."""
    from .hand_fit import fit_weights_of

    network = FitParameters(prediction.global_orient[i : i + 1], prediction.hand_pose[i : i + 1],
                            prediction.translation[i : i + 1], torch.zeros(0), torch.tensor(0.0))
    solved = solve_track(net.hand_model, obs, placed, network, prediction.scale[i : i + 1],
                         model_limit_frames(net.hand_model), fit_weights_of(config.fit),
                         config.fit.steps, config.fit.learning_rate)
    if solved is None:
        return None
    result = solved[0]
    quality = track_quality(result, obs, config.quality_scale, config.quality_teacher_scale)
    return result.projected[0].numpy(), result.joints[0].numpy(), float(quality[0])


def _rows(sample, joints: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> list[dict]:
    """Per visible joint, each method's 2D error (px, hand sizes) and 3D errors (mm)."""
    size = hand_size(sample.keypoints, sample.visible)
    columns = {}
    for method, (points_2d, points_3d) in joints.items():
        error_px = joint_errors(points_2d, sample.keypoints, sample.visible)
        error_3d = pa_3d = np.full(21, np.nan)
        if sample.keypoints_3d is not None and points_3d is not None:
            error_3d = root_relative_errors(points_3d[None], sample.keypoints_3d[None])[0]
            pa_3d = procrustes_errors(points_3d[None], sample.keypoints_3d[None])[0]
        columns |= {f"{method}_px": error_px, f"{method}_norm": error_px / size,
                    f"{method}_mpjpe_mm": error_3d, f"{method}_pa_mpjpe_mm": pa_3d}
    return [{"id": sample.id, "source": sample.source_name, "joint": j,
             **{name: values[j] for name, values in columns.items()}}
            for j in np.flatnonzero(sample.visible)]


METHODS = ("teacher", "student", "fit")


def summarise_model(rows: pd.DataFrame) -> pd.DataFrame:
    """Per source and overall, for each method (teacher, student, fit): EPE px, PCK@0.2,
    AUC, and the 3D means over the hands with 3D labels."""
    def summary(name: str, part: pd.DataFrame) -> dict:
        row = {"source": name, "hands": part["id"].nunique(),
               "hands_3d": part.dropna(subset=["student_mpjpe_mm"])["id"].nunique()}
        if "fit_norm" in part:
            per_hand = part.groupby("id")[["fit_quality", "fit_norm"]].mean()
            row["fit_quality_spearman"] = confidence_error_correlation(
                per_hand["fit_quality"].to_numpy(float), per_hand["fit_norm"].to_numpy(float))
        for method in (m for m in METHODS if f"{m}_px" in part):
            row |= {f"{method}_epe_px": part[f"{method}_px"].mean(),
                    f"{method}_pck@0.2": pck(part[f"{method}_norm"].to_numpy()),
                    f"{method}_auc": pck_auc(part[f"{method}_norm"].to_numpy()),
                    f"{method}_mpjpe_mm": part[f"{method}_mpjpe_mm"].mean(),
                    f"{method}_pa_mpjpe_mm": part[f"{method}_pa_mpjpe_mm"].mean()}
        return row
    if rows.empty:
        return pd.DataFrame()
    table = [summary(s, rows[rows["source"] == s]) for s in sorted(rows["source"].unique())]
    return pd.DataFrame([*table, summary("all", rows)])
