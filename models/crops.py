"""Square hand crops with their intrinsics; left hands mirrored so every crop shows a right hand.

Coordinates: pixel centres at integers, so an image of width W spans [-0.5, W - 0.5]. A crop of
side ``side`` (image pixels) at top-left ``(x0, y0)`` resampled to ``size`` pixels maps image
point u to crop point ``(u - x0) * size / side - 0.5``. Mirroring maps crop u to
``size - 1 - u``; the crop's K then describes the mirrored image with a positive focal length,
i.e. the mirrored scene (x -> -x in camera space), which is the right hand the model sees.
"""

from __future__ import annotations

import cv2
import numpy as np


def square_box(keypoints: np.ndarray, margin: float) -> tuple[np.ndarray, float]:
    """Centre and side of a square around the keypoints, ``margin`` times their longer side."""
    low, high = keypoints.min(0), keypoints.max(0)
    return (low + high) / 2.0, float(max(high - low) * margin)


def crop_affine(center: np.ndarray, side: float, size: int, mirror: bool) -> np.ndarray:
    """2x3 affine from image pixels to crop pixels."""
    scale = size / side
    x0, y0 = center - side / 2.0
    affine = np.array([[scale, 0.0, -scale * x0 - 0.5], [0.0, scale, -scale * y0 - 0.5]])
    if mirror:
        affine = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack(
            [affine, [0.0, 0.0, 1.0]])
    return affine


def crop_intrinsics(K: np.ndarray, affine: np.ndarray, mirror: bool) -> np.ndarray:
    """K of the crop: the image's K followed by the crop's scale and shift (un-mirrored focal)."""
    full = np.vstack([affine, [0.0, 0.0, 1.0]]) @ np.asarray(K, dtype=np.float64)
    if mirror:  # keep fx positive: the crop shows the mirrored scene, not a flipped camera
        full[0, 0] = -full[0, 0]
        full[0, 1] = -full[0, 1]
    return full


def crop_image(rgb: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(rgb, affine, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def to_crop(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


def switch_side(crop: np.ndarray, crop_keypoints: np.ndarray, box: np.ndarray, K: np.ndarray,
                mirror: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stored crop moved to the other side: the crop (size, size, 3) and its keypoints
    (21, 2) mirrored (crop u -> size - 1 - u, as ``crop_affine`` does), and the crop's K for
    ``mirror``, from its square ``box`` (x0, y0, x1, y1) in the frame of intrinsics ``K``."""
    size = crop.shape[1]
    box = np.asarray(box, dtype=np.float64)
    affine = crop_affine((box[:2] + box[2:]) / 2, float(box[2] - box[0]), size, mirror)
    points = np.stack([size - 1 - crop_keypoints[:, 0], crop_keypoints[:, 1]], axis=-1)
    return crop[:, ::-1], points, crop_intrinsics(K, affine, mirror)
