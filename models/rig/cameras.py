"""A rig's cameras as the maths needs them: projection matrices in metres, the transform from
one camera's frame to another's, lens distortion applied and removed (OpenCV's model).

Conventions (Anipose's and OpenCV's): x_cam = R x_world + t, pixels = K (distorted x_cam).
Everything here is in metres: the calibration's translations are scaled by its unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class RigGeometry:
    """C cameras in a fixed order.

    Attributes:
        names: the C camera names.
        K: (C, 3, 3) intrinsics.
        dist: C arrays of OpenCV distortion coefficients.
        R: (C, 3, 3) world to camera.
        t: (C, 3) world to camera, metres.
    """

    names: tuple[str, ...]
    K: np.ndarray
    dist: tuple[np.ndarray, ...]
    R: np.ndarray
    t: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def projections(self) -> np.ndarray:
        """(C, 3, 4) P = K [R | t]: world metres to undistorted pixels."""
        return self.K @ np.concatenate([self.R, self.t[:, :, None]], axis=-1)

    def to_camera(self, points: np.ndarray, camera: int) -> np.ndarray:
        """(..., 3) world points (metres) in camera ``camera``'s frame."""
        return points @ self.R[camera].T + self.t[camera]

    def to_world(self, points: np.ndarray, camera: int) -> np.ndarray:
        """(..., 3) points in camera ``camera``'s frame, in the world frame."""
        return (points - self.t[camera]) @ self.R[camera]

    def between(self, source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
        """(R (3, 3), t (3,)) with x_target = R x_source + t."""
        R = self.R[target] @ self.R[source].T
        return R, self.t[target] - R @ self.t[source]

    def undistort(self, pixels: np.ndarray, camera: int) -> np.ndarray:
        """(..., 2) detected pixels as the ideal pinhole camera K would have seen them (NaN
        stays NaN)."""
        flat = pixels.reshape(-1, 2).astype(np.float64)
        finite = np.isfinite(flat).all(-1)
        out = np.full_like(flat, np.nan)
        if finite.any() and len(self.dist[camera]):
            K = self.K[camera]
            out[finite] = cv2.undistortPoints(flat[finite, None], K, self.dist[camera],
                                              P=K)[:, 0]
        else:
            out[finite] = flat[finite]
        return out.reshape(pixels.shape)

    def project(self, camera_points: np.ndarray, camera: int, distort: bool = True
                ) -> np.ndarray:
        """(..., 2) pixels of (..., 3) points in camera ``camera``'s frame, through its lens
        distortion unless ``distort`` is False."""
        flat = camera_points.reshape(-1, 3).astype(np.float64)
        finite = np.isfinite(flat).all(-1) & (flat[:, 2] > 1e-6)
        out = np.full((len(flat), 2), np.nan)
        if finite.any():
            dist = self.dist[camera] if distort else np.zeros(0)
            out[finite] = cv2.projectPoints(flat[finite], np.zeros(3), np.zeros(3),
                                            self.K[camera], dist)[0][:, 0]
        return out.reshape(*camera_points.shape[:-1], 2)


def rig_geometry(calibration, names: list[str] | tuple[str, ...],
                 K: np.ndarray | None = None) -> RigGeometry:
    """The cameras ``names`` of a ``storage.calibration.RigCalibration``, in that order;
    ``K`` (C, 3, 3) replaces the calibration's intrinsics (frames stored at another size)."""
    cams = [calibration.cameras[name] for name in names]
    K = np.stack([c.K for c in cams]) if K is None else np.asarray(K, float)
    return RigGeometry(tuple(names), K,
                       tuple(np.asarray(c.dist, float) for c in cams),
                       np.stack([c.R for c in cams]),
                       np.stack([c.t for c in cams]) * calibration.unit_m)
