"""Pinhole intrinsics: estimation from a field of view, and adjustment to resized images.

Pixel centres are at integer coordinates, so the image spans [-0.5, W - 0.5].
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def intrinsics_from_fov(width: int, height: int, fov_deg: float) -> np.ndarray:
    """K of a centred pinhole camera whose field of view across the longer side is ``fov_deg``."""
    focal = 0.5 * max(width, height) / math.tan(math.radians(fov_deg) / 2.0)
    return np.array(
        [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
    )


def resize_matrix(scale_x: float, scale_y: float) -> np.ndarray:
    """(3, 3) the pixel map of an image resized by (scale_x, scale_y), pixel centres at
    integers: u' = (u + 0.5) * scale_x - 0.5."""
    return np.array([[scale_x, 0.0, 0.5 * scale_x - 0.5], [0.0, scale_y, 0.5 * scale_y - 0.5],
                     [0.0, 0.0, 1.0]])


def scale_intrinsics(K: ArrayOrTensor, scale_x: float, scale_y: float | None = None
                     ) -> ArrayOrTensor:
    """K for the same view after the image is resized by (scale_x, scale_y): the one rule
    for ingest's resized frames and training's resampled crops.

    Args:
        K: (..., 3, 3) numpy or torch; any 3x3 projection (a rotated crop's too).
        scale_x, scale_y: the resize factors (``scale_y`` defaults to ``scale_x``).

    Returns:
        (..., 3, 3) of K's kind (numpy results in float64).

    >>> scale_intrinsics(intrinsics_from_fov(640, 360, 90.0), 0.5)[0]
    array([160. ,   0. , 159.5])
    """
    S = resize_matrix(scale_x, scale_x if scale_y is None else scale_y)
    if isinstance(K, torch.Tensor):
        return torch.as_tensor(S, dtype=K.dtype, device=K.device) @ K
    return S @ np.asarray(K, dtype=np.float64)
