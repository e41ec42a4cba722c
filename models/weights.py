"""Supervision weights from 2D detections (METHOD.md section 1), with outlier down-weighting.

- joint weight: confidence^2;
- bone weight: product of the two endpoint confidences;
- photometric gate per sample: mean confidence, or 0 when the smallest is <= ``min_confidence``;
- temporal outliers: a joint far from the midpoint of its positions in the previous and next
  frames (a jump its neighbours do not support) is down-weighted;
- implausible 2D configurations: a finger bone longer than ``max_bone_ratio`` times the palm's
  size, or a hand a few pixels wide, is down-weighted;
- joints that do not look like their hand: where the frame's colour at a detected joint is
  more than ``colour_outlier`` robust deviations from that joint's usual colour over the
  video (``models/appearance.py``), something covers it and the detector is guessing.

Arrays are per hand track: keypoints (T, 21, 2), confidence (T, 21), present (T,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .appearance import colour_distances
from .detectors.schema import BONES
from .keypoints import hand_sizes

PARENTS = np.array([p for p, _ in BONES])
CHILDREN = np.array([c for _, c in BONES])
WRIST, MCPS = 0, np.array([5, 9, 13, 17])
FINGER_BONES = np.array([i for i, (p, _) in enumerate(BONES) if p != 0])

TEMPORAL_OUTLIER = 1
IMPLAUSIBLE = 2
UNLIKE_HAND = 4


@dataclass(frozen=True)
class WeightParams:
    min_confidence: float = 0.1
    temporal_jump: float = 0.3
    max_bone_ratio: float = 1.2
    min_hand_px: float = 8.0
    outlier_factor: float = 0.1
    colour_outlier: float | None = 3.0


def temporal_outliers(keypoints: np.ndarray, present: np.ndarray, jump: float) -> np.ndarray:
    """(T, 21) joints whose position is more than ``jump`` hand sizes from the midpoint of the
    same joint in the neighbouring frames (constant motion is therefore not penalised)."""
    flags = np.zeros(keypoints.shape[:2], dtype=bool)
    if len(keypoints) < 3:
        return flags
    middle = present[1:-1] & present[:-2] & present[2:]
    predicted = (keypoints[:-2] + keypoints[2:]) / 2.0
    size = np.maximum(hand_sizes(keypoints)[1:-1], 1.0)
    distance = np.linalg.norm(keypoints[1:-1] - predicted, axis=-1) / size[:, None]
    flags[1:-1] = middle[:, None] & (distance > jump)
    return flags


def implausible_joints(keypoints: np.ndarray, max_bone_ratio: float, min_hand_px: float
                       ) -> np.ndarray:
    """(T, 21) endpoints of finger bones too long for the palm; whole hands that are tiny."""
    palm_length = np.median(np.linalg.norm(keypoints[:, MCPS] - keypoints[:, [WRIST]], axis=-1),
                            axis=1)
    palm_width = np.linalg.norm(keypoints[:, 5] - keypoints[:, 17], axis=-1)
    reference = np.maximum(palm_length, palm_width)
    bones = np.linalg.norm(keypoints[:, CHILDREN] - keypoints[:, PARENTS], axis=-1)
    too_long = np.zeros_like(bones, dtype=bool)
    too_long[:, FINGER_BONES] = bones[:, FINGER_BONES] > max_bone_ratio * reference[:, None]
    flags = np.zeros(keypoints.shape[:2], dtype=bool)
    for bone in np.flatnonzero(too_long.any(0)):
        flags[too_long[:, bone], PARENTS[bone]] = True
        flags[too_long[:, bone], CHILDREN[bone]] = True
    flags |= (hand_sizes(keypoints) < min_hand_px)[:, None]
    return flags


def supervision_weights(keypoints: np.ndarray, confidence: np.ndarray, present: np.ndarray,
                        params: WeightParams, colours: np.ndarray | None = None,
                        unlike: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """joint (T, 21), bone (T, 20), sample (T,) weights and flags (T, 21) uint8 bits, from
    the detections and, where given, the frame's colour at each joint (T, 21, 3) uint8, or
    the joints already found unlike their hand (T, 21) bool (a simulation's, without
    colours)."""
    keypoints = np.where(present[:, None, None], keypoints, np.nan)
    flags = np.zeros(confidence.shape, dtype=np.uint8)
    flags[temporal_outliers(keypoints, present, params.temporal_jump)] |= TEMPORAL_OUTLIER
    with np.errstate(invalid="ignore"):
        implausible = implausible_joints(keypoints, params.max_bone_ratio, params.min_hand_px)
    flags[implausible] |= IMPLAUSIBLE
    if colours is not None and params.colour_outlier is not None:
        unlike = np.nan_to_num(colour_distances(colours, present)) > params.colour_outlier
    if unlike is not None:
        flags[unlike] |= UNLIKE_HAND
    trusted = np.where(flags > 0, params.outlier_factor, 1.0) * np.nan_to_num(confidence)
    trusted = np.where(present[:, None], trusted, 0.0)
    gate = np.where(trusted.min(axis=1) > params.min_confidence, trusted.mean(axis=1), 0.0)
    return {
        "joint": trusted**2,
        "bone": trusted[:, PARENTS] * trusted[:, CHILDREN],
        "sample": np.where(present, gate, 0.0),
        "flags": np.where(present[:, None], flags, 0).astype(np.uint8),
    }
