"""Test-time augmentations for keypoint confidence: similarity warps around a hand.

Each augmentation maps the image into a square crop around the hand with a rotation, scale and
optional horizontal flip; the keypoints found in the crop are mapped back with the inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augmentation:
    rotation_deg: float = 0.0
    scale: float = 1.0
    flip: bool = False

    @classmethod
    def parse(cls, text: str) -> Augmentation:
        """'hflip', 'rot+15', 'rot-15', 'scale0.8' (combinable with ',': 'hflip,rot+10')."""
        rotation, scale, flip = 0.0, 1.0, False
        for part in text.split(","):
            if part == "hflip":
                flip = True
            elif part.startswith("rot"):
                rotation = float(part[3:])
            elif part.startswith("scale"):
                scale = float(part[5:])
            else:
                raise ValueError(f"unknown augmentation {part!r} in {text!r}")
        return cls(rotation, scale, flip)


def crop_transform(center: np.ndarray, side: float, out_size: int, aug: Augmentation) -> np.ndarray:
    """2x3 affine from image pixels to a crop of ``out_size`` px centred on ``center``."""
    zoom = out_size / side * aug.scale
    rotation = cv2.getRotationMatrix2D((0.0, 0.0), aug.rotation_deg, zoom)
    matrix = np.vstack([rotation, [0.0, 0.0, 1.0]])
    to_origin = np.array([[1.0, 0, -center[0]], [0, 1.0, -center[1]], [0, 0, 1.0]])
    to_crop = np.array([[1.0, 0, out_size / 2], [0, 1.0, out_size / 2], [0, 0, 1.0]])
    full = to_crop @ matrix @ to_origin
    if aug.flip:
        full = np.array([[-1.0, 0, out_size - 1], [0, 1.0, 0], [0, 0, 1.0]]) @ full
    return full[:2]


def warp(rgb: np.ndarray, transform: np.ndarray, out_size: int) -> np.ndarray:
    return cv2.warpAffine(rgb, transform, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ transform[:, :2].T + transform[:, 2]


def invert(transform: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(transform)


def unrotate_world(transform: np.ndarray, world: np.ndarray) -> np.ndarray:
    """(21, 3) 3D joints a detector found in a view made by ``transform`` -> the image's axes.

    A view rotates (and maybe mirrors) the image in its plane, and a detector's image-aligned
    3D turns with it about the viewing axis: undo the view's normalised 2x2 part on x, y (which
    un-mirrors x for a flipped view); depth is unchanged.
    """
    linear = transform[:, :2] / np.sqrt(abs(np.linalg.det(transform[:, :2])))
    return np.column_stack([world[:, :2] @ np.linalg.inv(linear).T, world[:, 2]])
