"""A track's evidence, from the arrays the detect and weight stages store, in the fit's camera.

The hand model is a right hand. A left hand is fitted as the right hand seen in the mirror
(x -> -x), as the network sees it in its mirrored crop: its camera is ``K @ diag(-1, 1, 1)``
and its teacher 3D is mirrored (``models/hand/sides.py`` mirrors results back).
"""

from __future__ import annotations

import numpy as np
import torch

from ..hand.sides import mirror_matrix, mirror_points, mirror_rotations
from ..keypoints import hand_sizes
from .placement import place_world
from .sequence import FitParameters, TrackObservations


def _tensor(values, device) -> torch.Tensor:
    return torch.as_tensor(np.nan_to_num(np.asarray(values, np.float32)), device=device)


def track_observations(keypoints: np.ndarray, weights: np.ndarray, world: np.ndarray,
                       world_confidence: np.ndarray, present: np.ndarray, times: np.ndarray,
                       K: np.ndarray, mirrored: bool, device: str | torch.device = "cpu",
                       teacher_only: np.ndarray | None = None
                       ) -> tuple[TrackObservations, torch.Tensor]:
    """The fit's observations of T frames, and the teacher placed in its camera (T, 21, 3)
    (NaN rows where it could not be placed).

    Args:
        keypoints: (T, 21, 2) detections in frame pixels (NaN where absent).
        weights: (T, 21) joint weights of the weight stage.
        world: (T, 21, 3) the detector's 3D, metres (NaN where it has none).
        world_confidence: (T, 21).
        present: (T,) frames with a detection.
        times: (T,) seconds.
        K: (3, 3) the frame's intrinsics.
        mirrored: a left hand, fitted in the mirror.
        teacher_only: (T,) bool, frames without a detection to fit whose ``world`` still
            counts (the fit's teacher term is centred and scaled: it needs no 2D); None:
            the teacher counts where the detection does.
    """
    if keypoints.shape[1:] != (21, 2) or world.shape[1:] != (21, 3):
        raise ValueError(f"expected (T, 21, 2) keypoints and (T, 21, 3) world joints, got "
                         f"{keypoints.shape} and {world.shape}")
    counted = present if teacher_only is None else present | teacher_only
    has_world = counted & np.isfinite(world).all(-1).all(-1)
    obs = TrackObservations(
        keypoints=_tensor(keypoints, device),
        weights=_tensor(np.where(present[:, None], weights, 0), device),
        teacher=_tensor(mirror_points(world, mirrored), device),
        teacher_confidence=_tensor(np.where(has_world[:, None], world_confidence, 0), device),
        hand_size=_tensor(np.nan_to_num(hand_sizes(keypoints), nan=1.0), device),
        times=torch.as_tensor(np.asarray(times, np.float32), device=device),
        K=torch.as_tensor(np.asarray(K, np.float32) @ mirror_matrix(mirrored), device=device),
        present=torch.as_tensor(np.asarray(present, bool), device=device))
    placed = np.full((len(present), 21, 3), np.nan, np.float32)
    for i in np.flatnonzero(has_world & present):  # placing needs the 2D
        camera_joints = place_world(world[i], keypoints[i], K)
        if camera_joints is not None:
            placed[i] = mirror_points(camera_joints, mirrored)
    return obs, torch.as_tensor(placed, device=device)


def network_parameters(global_orient: np.ndarray, hand_pose: np.ndarray, anchor: np.ndarray,
                       mirrored: bool, device: str | torch.device = "cpu") -> FitParameters:
    """The network's per-frame predictions (in the frame's camera, left hands un-mirrored, as
    the store keeps them) as a fit start in the fit's camera; the track's shape and size are
    set by ``track.track_starts``."""
    def tensor(values):
        return torch.as_tensor(np.asarray(values, np.float32), device=device)

    return FitParameters(tensor(mirror_rotations(global_orient, mirrored)),
                         tensor(mirror_rotations(hand_pose, mirrored)),
                         tensor(mirror_points(anchor, mirrored)), torch.zeros(0, device=device),
                         torch.tensor(0.0, device=device))
