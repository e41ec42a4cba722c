"""Pinhole intrinsics: estimation from a field of view, and adjustment to resized images.

Pixel centres are at integer coordinates, so the image spans [-0.5, W - 0.5].
"""

from __future__ import annotations

import math

import numpy as np


def intrinsics_from_fov(width: int, height: int, fov_deg: float) -> np.ndarray:
    """K of a centred pinhole camera whose field of view across the longer side is ``fov_deg``."""
    focal = 0.5 * max(width, height) / math.tan(math.radians(fov_deg) / 2.0)
    return np.array(
        [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
    )


def scale_intrinsics(K: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """K for the same camera after the image is resized by (scale_x, scale_y)."""
    K = np.asarray(K, dtype=np.float64).copy()
    K[0, 0] *= scale_x
    K[1, 1] *= scale_y
    K[0, 2] = (K[0, 2] + 0.5) * scale_x - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * scale_y - 0.5
    return K
