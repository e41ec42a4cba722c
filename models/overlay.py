"""Drawing reconstructions on frames: the shaded mesh (rendered in the hand's crop, then
warped into the frame) and the 2D skeleton, coloured by finger."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .crops import crop_affine
from .detectors.schema import BONES
from .hand.sides import mirror_points
from .render import Renderer, light_from_params

# BGR-free: RGB colours of the wrist and the five fingers' bones
FINGER_COLOURS = np.array([[255, 255, 255], [230, 60, 60], [240, 200, 40], [60, 200, 80],
                           [60, 140, 240], [200, 80, 220]], dtype=np.uint8)
MESH_OPACITY = 0.55
# The mesh is drawn in one light-blue albedo under a light from the camera, not in its learned
# skin colour: a skin-coloured mesh on skin hides the very misfits the overlay is for.
MESH_ALBEDO = (0.45, 0.7, 1.0)
MESH_LIGHT = (0.45, 0.65, 1, 1, 1, 1, 1, 1, 0.0, 0.3, 1.0)


def _finger_of(joint: int) -> int:
    return 0 if joint == 0 else 1 + (joint - 1) // 4


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, thickness: int = 2) -> None:
    """Bones and joints of one hand (21 x 2 frame pixels) drawn in place."""
    points = np.round(keypoints).astype(np.int32)
    for parent, child in BONES:
        colour = FINGER_COLOURS[_finger_of(child)].tolist()
        cv2.line(image, tuple(points[parent]), tuple(points[child]), colour, thickness,
                 cv2.LINE_AA)
    for joint, point in enumerate(points):
        cv2.circle(image, tuple(point), thickness + 1, FINGER_COLOURS[_finger_of(joint)].tolist(),
                   -1, cv2.LINE_AA)


def draw_mesh(image: np.ndarray, renderer: Renderer, faces: torch.Tensor, vertices: np.ndarray,
              box: np.ndarray, frame_K: np.ndarray, mirrored: bool, size: int = 224) -> None:
    """Render one hand (frame camera, metres) in its crop and blend it into ``image``; a hand
    without a crop (a frame the track filled: no detection, its ``box`` NaN) is not drawn."""
    if not (np.isfinite(box).all() and np.isfinite(vertices).all()):
        return
    center, side = (box[:2] + box[2:]) / 2, float(box[2] - box[0])
    affine = crop_affine(center, side, size, mirrored)
    full = np.vstack([affine, [0.0, 0.0, 1.0]]) @ frame_K
    if mirrored:  # the crop shows the mirrored scene: render the right hand there
        full[:, 0] = -full[:, 0]
    albedo = torch.tensor(MESH_ALBEDO).expand(1, vertices.shape[0], 3)
    in_crop = torch.tensor(mirror_points(vertices, mirrored), dtype=torch.float32)[None]
    out = renderer.render(in_crop, faces, albedo, torch.tensor(full, dtype=torch.float32)[None],
                          size, size, light_from_params(torch.tensor([MESH_LIGHT])))
    rgb = (out.image[0].clamp(0, 1).numpy() * 255).astype(np.float32)
    alpha = out.silhouette[0].clamp(0, 1).numpy().astype(np.float32) * MESH_OPACITY
    region = _crop_region(affine, size, image.shape[:2])
    if region is None:
        return
    x0, y0, x1, y1 = region
    # crop -> the region's pixels: only the part of the frame the crop covers is blended
    inverse = cv2.invertAffineTransform(affine) - np.array([[0, 0, x0], [0, 0, y0]])
    rgb = cv2.warpAffine(rgb, inverse, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, inverse, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)[..., None]
    patch = image[y0:y1, x0:x1]
    patch[:] = (patch * (1 - alpha) + rgb * alpha).astype(np.uint8)


def _crop_region(affine: np.ndarray, size: int, shape: tuple[int, int]
                 ) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) the frame pixels a ``size`` crop (frame -> crop ``affine``) covers,
    within a frame of ``shape`` (H, W); None where they do not meet."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    inverse = cv2.invertAffineTransform(affine)
    frame = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.maximum(np.floor(frame.min(0)).astype(int) - 1, 0)
    x1 = min(int(np.ceil(frame[:, 0].max())) + 2, shape[1])
    y1 = min(int(np.ceil(frame[:, 1].max())) + 2, shape[0])
    return None if x1 <= x0 or y1 <= y0 else (int(x0), int(y0), x1, y1)
