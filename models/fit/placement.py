"""The teacher's 3D put in the camera: MediaPipe's world landmarks are metric but hand-centred,
so a rigid transform that makes them project onto the 2D keypoints (PnP with the frame's K)
places them. This is the "detector alone" 3D baseline of bench/accuracy.py, and the fit's
teacher-based start.
"""

from __future__ import annotations

import cv2
import numpy as np


def place_world(world: np.ndarray, keypoints: np.ndarray, K: np.ndarray) -> np.ndarray | None:
    """(21, 3) world landmarks and their (21, 2) keypoints in pixels -> (21, 3) camera-frame
    joints in metres (the landmarks rigidly moved), or None where PnP finds no pose in front of
    the camera.

    >>> K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    >>> world = np.random.default_rng(0).normal(0, 0.03, (21, 3))
    >>> camera = world + [0.05, -0.02, 0.6]
    >>> pixels = camera[:, :2] / camera[:, 2:] * 500 + [320, 240]
    >>> bool(np.allclose(place_world(world, pixels, K), camera, atol=1e-4))
    True
    """
    if world.shape != (21, 3) or keypoints.shape != (21, 2):
        raise ValueError(f"expected (21, 3) landmarks and (21, 2) keypoints, got {world.shape} "
                         f"and {keypoints.shape}")
    if not (np.isfinite(world).all() and np.isfinite(keypoints).all()):
        return None
    ok, rvec, tvec = cv2.solvePnP(world.astype(np.float64), keypoints.astype(np.float64),
                                  np.asarray(K, dtype=np.float64), None,
                                  flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rvec)
    camera = world @ rotation.T + tvec.reshape(1, 3)
    return camera if (camera[:, 2] > 0).all() else None
