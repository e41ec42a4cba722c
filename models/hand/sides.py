"""Left hands as mirrored right hands: the one place that mirrors.

Every hand model here is a right hand. A left hand is handled as the right hand seen in a
mirror (x -> -x): its crop is mirrored for the network, it is fitted in the mirrored camera,
and its results are mirrored back. Points mirror by ``MIRROR``; an axis-angle rotation R
mirrors to M R M (M = diag(-1, 1, 1)), whose axis-angle is the vector times ``MIRROR_ROTVEC``
(the left-hand convention of MANO's left model).

>>> mirror_points(np.array([[1.0, 2.0, 3.0]]), True)
array([[-1.,  2.,  3.]])
>>> mirror_rotations(np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]), np.array([True, False]))
array([[ 0.1, -0.2, -0.3],
       [ 0.1,  0.2,  0.3]])
"""

from __future__ import annotations

import numpy as np

MIRROR = np.array([-1.0, 1.0, 1.0], dtype=np.float32)
MIRROR_ROTVEC = np.array([1.0, -1.0, -1.0], dtype=np.float32)


def _mirrored(values: np.ndarray, factors: np.ndarray, mirrored: bool | np.ndarray
              ) -> np.ndarray:
    if values.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) values, got shape {values.shape}")
    if np.ndim(mirrored) == 0:
        return values * factors if mirrored else values
    which = np.asarray(mirrored, bool)
    if which.shape != values.shape[:which.ndim]:
        raise ValueError(f"mirrored {which.shape} does not lead values {values.shape}")
    which = which.reshape(which.shape + (1,) * (values.ndim - which.ndim))
    return np.where(which, values * factors, values)


def mirror_matrix(mirrored: bool) -> np.ndarray:
    """(3, 3) the mirror as a linear map (diag(-1, 1, 1)), or the identity: for a camera or a
    rigid transform that must see the mirrored scene."""
    return np.diag(MIRROR) if mirrored else np.eye(3, dtype=np.float32)


def mirror_points(points: np.ndarray, mirrored: bool | np.ndarray) -> np.ndarray:
    """(N, ..., 3) points (joints, vertices, translations) mirrored where ``mirrored`` (one
    bool, or (N,) per item): a right hand's to a left hand's, and back."""
    return _mirrored(points, MIRROR, mirrored)


def mirror_rotations(rotvecs: np.ndarray, mirrored: bool | np.ndarray) -> np.ndarray:
    """(N, ..., 3) axis-angle rotations mirrored where ``mirrored``, as ``mirror_points``."""
    return _mirrored(rotvecs, MIRROR_ROTVEC, mirrored)
