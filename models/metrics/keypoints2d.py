"""2D keypoint metrics: end-point error, PCK normalised by the hand's size, AUC, and how well a
confidence ranks errors.

The normalising size of a hand is the longer side of the tight box around its visible
ground-truth keypoints, the same for every source (boxes given by datasets differ in margin,
and some are missing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..keypoints import hand_sizes

PCK_THRESHOLD = 0.2
AUC_MAX_THRESHOLD = 0.5  # AUC of PCK over normalised thresholds 0 .. 0.5, 101 steps


def hand_size(keypoints: np.ndarray, visible: np.ndarray) -> float:
    """(21, 2) keypoints' size over the visible joints (``keypoints.hand_sizes``), at least
    a pixel: the PCK normaliser."""
    return max(float(hand_sizes(keypoints, visible)), 1.0)


def joint_errors(predicted: np.ndarray, truth: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(21,) pixel distance per joint; NaN where the truth is not visible."""
    errors = np.linalg.norm(predicted - truth, axis=-1)
    return np.where(visible, errors, np.nan)


def pck(normalised_errors: np.ndarray, threshold: float = PCK_THRESHOLD) -> float:
    values = normalised_errors[~np.isnan(normalised_errors)]
    return float(np.mean(values <= threshold)) if values.size else float("nan")


def pck_auc(normalised_errors: np.ndarray, max_threshold: float = AUC_MAX_THRESHOLD) -> float:
    """Area under the PCK curve over thresholds [0, max_threshold], scaled to [0, 1]."""
    values = normalised_errors[~np.isnan(normalised_errors)]
    if not values.size:
        return float("nan")
    thresholds = np.linspace(0.0, max_threshold, 101)
    curve = (values[None, :] <= thresholds[:, None]).mean(axis=1)
    return float(np.trapezoid(curve, thresholds) / max_threshold)


def confidence_error_correlation(confidence: np.ndarray, errors: np.ndarray) -> float:
    """Spearman rank correlation between confidence and error (negative = useful)."""
    keep = ~(np.isnan(confidence) | np.isnan(errors))
    if keep.sum() < 3:
        return float("nan")
    frame = pd.DataFrame({"confidence": confidence[keep], "error": errors[keep]})
    return float(frame.corr(method="spearman").iloc[0, 1])
