"""A hand's size in an image: the scale every 2D threshold of the pipeline is measured in
(the weight stage's jumps, the fit's visibility, the evidence cuts, PCK)."""

from __future__ import annotations

import warnings

import numpy as np


def hand_sizes(keypoints: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """The longer side of each hand's keypoint box, in the keypoints' unit.

    Args:
        keypoints: (..., J, 2) keypoints; NaN joints are left out.
        visible: (..., J) the joints to measure (every finite joint when None).

    Returns:
        (...) sizes; NaN where a hand has no joint to measure.

    >>> hand_sizes(np.array([[[0.0, 0.0], [4.0, 2.0], [1.0, 3.0]]]))
    array([4.])
    >>> hand_sizes(np.array([[0.0, 0.0], [4.0, 2.0], [1.0, 3.0]]), np.array([True, False, True]))
    array(3.)
    """
    keypoints = np.asarray(keypoints)
    if not np.issubdtype(keypoints.dtype, np.floating):
        keypoints = keypoints.astype(np.float64)
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"expected (..., J, 2) keypoints, got shape {keypoints.shape}")
    if visible is not None:
        keypoints = np.where(np.asarray(visible, bool)[..., None], keypoints, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # absent hands are all-NaN rows
        extent = np.nanmax(keypoints, axis=-2) - np.nanmin(keypoints, axis=-2)
        return np.asarray(np.nanmax(extent, axis=-1))
