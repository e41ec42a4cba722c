"""Does each detected joint look like its hand? Colour evidence of occlusion.

A detector guessing a joint it cannot see places it on whatever covers it: a mug, a cup,
a sleeve, the table. Its confidence and the fit's residual tell such joints only weakly
(``docs/accuracy.md``, "Occlusion"), but the image at the joint does: it is not the colour
that joint has in the rest of the video. So detect samples the frame's colour at each
detected joint (``joint_colours``), and the weight stage compares it with that joint's usual
colour over the hand's video (``colour_distances``), in YCbCr with the brightness given half
the weight of the chroma, so that shading and light changes count less than a change of
material. An object of the hand's own colour (the other hand) is not caught: the evidence
can only lower a weight, never raise one.

Written by hand: a per-joint robust colour model over a track is a few lines of numpy, and
no installable library offers it.
"""

from __future__ import annotations

import numpy as np

PATCH = 0.03  # hand sizes: half-side of the square sampled around a joint
MIN_PATCH_PX = 1
# YCbCr (ITU-R BT.601, full range), without offsets: the distances ignore them
_YCBCR = np.array([[0.299, 0.587, 0.114],
                   [-0.168736, -0.331264, 0.5],
                   [0.5, -0.418688, -0.081312]])
_CHANNEL_WEIGHTS = np.array([0.5, 1.0, 1.0])  # Y, Cb, Cr
MIN_SPREAD = 4.0  # colour levels: the least spread a joint's colour is allowed over a video


def joint_colours(rgb: np.ndarray, keypoints: np.ndarray, hand_size: float) -> np.ndarray:
    """The median colour of a small square around each joint.

    Args:
        rgb: (H, W, 3) uint8 frame.
        keypoints: (J, 2) joints in pixels (NaN joints get colour 0).
        hand_size: the hand's size in pixels (``keypoints.hand_sizes``): sets the square.

    Returns:
        (J, 3) uint8 RGB.

    >>> frame = np.zeros((20, 20, 3), np.uint8); frame[:, 10:] = (200, 150, 120)
    >>> joint_colours(frame, np.array([[5.0, 5.0], [15.0, 5.0]]), 50.0).tolist()
    [[0, 0, 0], [200, 150, 120]]
    """
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or keypoints.ndim != 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"expected an (H, W, 3) frame and (J, 2) keypoints, got {rgb.shape} "
                         f"and {keypoints.shape}")
    half = max(MIN_PATCH_PX, round(PATCH * hand_size))
    height, width = rgb.shape[:2]
    colours = np.zeros((len(keypoints), 3), np.uint8)
    for j, (x, y) in enumerate(keypoints):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        col, row = round(float(x)), round(float(y))
        x0, x1 = max(0, col - half), min(width, col + half + 1)
        y0, y1 = max(0, row - half), min(height, row + half + 1)
        if x0 < x1 and y0 < y1:
            colours[j] = np.median(rgb[y0:y1, x0:x1].reshape(-1, 3), axis=0)
    return colours


def colour_distances(colours: np.ndarray, present: np.ndarray) -> np.ndarray:
    """How unlike its usual self each joint looks: the distance of its colour from the
    joint's median colour over the frames its hand is present, in units of the joint's own
    spread over those frames (a robust z-score: 1.4826 times the median absolute distance).

    Args:
        colours: (T, J, 3) uint8 RGB (``joint_colours`` per frame).
        present: (T,) frames where the hand was detected.

    Returns:
        (T, J) distances; NaN where the hand is absent.

    >>> skin = np.tile(np.array([[[180, 130, 110]]], np.uint8), (10, 2, 1))
    >>> skin[:, :, 0] += np.arange(10, dtype=np.uint8)[:, None]  # a little noise
    >>> skin[7, 1] = (40, 60, 200)  # a blue mug over joint 1 in frame 7
    >>> d = colour_distances(skin, np.ones(10, bool))
    >>> bool(d[7, 1] > 10), bool((np.delete(d[:, 1], 7) < 3).all())
    (True, True)
    """
    if colours.ndim != 3 or colours.shape[-1] != 3 or len(present) != len(colours):
        raise ValueError(f"expected (T, J, 3) colours and (T,) present, got {colours.shape} "
                         f"and {np.shape(present)}")
    distances = np.full(colours.shape[:2], np.nan)
    if not present.any():
        return distances
    ycc = (colours[present].astype(np.float64) @ _YCBCR.T) * _CHANNEL_WEIGHTS
    usual = np.median(ycc, axis=0)
    away = np.linalg.norm(ycc - usual, axis=-1)
    spread = np.maximum(1.4826 * np.median(away, axis=0), MIN_SPREAD)
    distances[present] = away / spread
    return distances
