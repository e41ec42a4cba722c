"""The per-hand quality score of the labels: how far to trust each fitted hand.

quality = evidence x reprojection factor x 3D factor, each in [0, 1]:

- evidence: the root of the hand's mean joint weight (confidence, after the weight stage's
  outlier down-weighting); a hand with no weight at all (every joint rejected) scores 0,
  and its reprojection error is NaN: not measured, never a perfect 0;
- reprojection: exp(-e / s2), e the weighted distance of the fitted joints to the detections
  in hand sizes: a fit that cannot explain its detections is suspect, and so are they;
- 3D: exp(-r / s3), r the fit's disagreement with the detector's 3D (``terms.teacher_3d``):
  where the 2D and the detector's 3D tell different stories, one of them is wrong. Where the
  detector gave no 3D (r is NaN) nothing disagrees: the factor is 1.

A frame filled between detections (interpolated) takes the score of its nearer detected
neighbour, halved for every ``half_life`` frames away from it. bench/accuracy.py reports how
well the score ranks the real errors (Spearman).
"""

from __future__ import annotations

import numpy as np

from .terms import reprojection_px


def hand_quality(evidence: np.ndarray, reprojection: np.ndarray, teacher_residual: np.ndarray,
                 interpolated: np.ndarray, reprojection_scale: float, teacher_scale: float,
                 half_life: float = 3.0) -> np.ndarray:
    """(T,) quality of one track's frames from (T,) evidence, reprojection error (hand
    sizes), teacher-3D residual and the interpolated flag.

    >>> q = hand_quality(np.array([1.0, 0, 0.81, 0.0]), np.array([0.0, np.nan, 0.1, np.nan]),
    ...                  np.array([0.0, 0.0, 0.0, np.nan]),
    ...                  np.array([False, True, False, False]), 0.1, 0.05, 1.0)
    >>> np.round(q, 3).tolist()
    [1.0, 0.5, 0.331, 0.0]
    """
    detected = ~interpolated
    quality = np.zeros(len(evidence))
    unmeasured_error = np.nan_to_num(reprojection[detected], nan=np.inf)  # no weight: 0
    no_teacher = np.nan_to_num(teacher_residual[detected], nan=0.0)  # nothing disagrees
    quality[detected] = (np.sqrt(np.clip(evidence[detected], 0, 1))
                         * np.exp(-unmeasured_error / reprojection_scale)
                         * np.exp(-no_teacher / teacher_scale))
    if detected.any() and interpolated.any():
        frames = np.arange(len(evidence))
        known = frames[detected]
        nearest = known[np.abs(frames[:, None] - known[None]).argmin(1)]
        decay = 0.5 ** (np.abs(frames - nearest) / half_life)
        quality[interpolated] = (quality[nearest] * decay)[interpolated]
    return quality


def track_quality(result, obs, reprojection_scale: float, teacher_scale: float) -> np.ndarray:
    """(T,) ``hand_quality`` of a fitted track (``sequence.FitResult``) from its observations
    (``sequence.TrackObservations``)."""
    error_px = reprojection_px(result.projected, obs.keypoints, obs.weights).cpu().numpy()
    size = np.maximum(obs.hand_size.cpu().numpy(), 1.0)
    return hand_quality(obs.weights.mean(-1).cpu().numpy(), error_px / size,
                        result.teacher_residual.cpu().numpy(), result.interpolated.cpu().numpy(),
                        reprojection_scale, teacher_scale)
