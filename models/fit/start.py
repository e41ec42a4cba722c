"""Where a track's fit starts: the teacher's 3D placed in the camera and posed like it, and
the choice between that and the network's prediction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import roma
import torch

from ..hand.base import HandModel
from ..hand.limits import joint_limit_penalty, limits_deg
from ..network.s2hand import ANCHOR_JOINT
from . import terms
from .sequence import (
    FitParameters,
    FitWeights,
    TrackObservations,
    pose_joints,
    project_in_front,
)

PALM = [0, 1, 5, 9, 13, 17]  # wrist, thumb CMC and the four MCPs: rigid in the palm


def teacher_start(hand_model: HandModel, placed: torch.Tensor, betas: torch.Tensor,
                  log_scale: torch.Tensor, limit_frames: torch.Tensor, steps: int = 60
                  ) -> FitParameters:
    """A start from the teacher's 3D placed in the camera (``placement.place_world``; (T, 21,
    3), NaN rows where it could not be placed): the rest hand of the track's shape and size
    turned onto the placed palm (Kabsch) and anchored at its middle MCP, then posed like the
    teacher by a few Adam steps of rotation and pose against the placed joints (inside the
    joint limits), so that a fist does not start as a flat hand with its fingers through the
    camera."""
    frames = placed.shape[0]
    with torch.no_grad():
        rest = hand_model(torch.zeros(1, 3), torch.zeros(1, 15, 3), betas[None]).joints[0]
    rest = rest.to(placed)
    valid = torch.isfinite(placed).all(-1).all(-1)
    target = torch.where(valid[:, None, None], placed, rest.expand(frames, -1, -1))
    rotation, _ = roma.rigid_points_registration(rest[PALM].expand(frames, -1, -1),
                                                 target[:, PALM])
    start = FitParameters(roma.rotmat_to_rotvec(rotation),
                          torch.zeros(frames, 15, 3, dtype=placed.dtype, device=placed.device),
                          target[:, ANCHOR_JOINT], betas.clone(), log_scale.clone())
    posed = _pose_like(hand_model, start, target, limit_frames, steps)
    return replace(posed, anchor=torch.where(valid[:, None], posed.anchor, torch.nan))


def _pose_like(hand_model: HandModel, start: FitParameters, target: torch.Tensor,
               limit_frames: torch.Tensor, steps: int) -> FitParameters:
    """Rotation and pose of ``start`` fitted to ``target`` joints (T, 21, 3), root-relative."""
    p = start.detach()
    p.global_orient.requires_grad_(True)
    p.hand_pose.requires_grad_(True)
    limits = torch.tensor(np.radians(limits_deg()), dtype=target.dtype, device=target.device)
    optimizer = torch.optim.Adam([p.global_orient, p.hand_pose], lr=0.05)
    relative = target - target[:, ANCHOR_JOINT : ANCHOR_JOINT + 1]
    for _ in range(steps):
        joints = pose_joints(hand_model, p)
        offset = joints - joints[:, ANCHOR_JOINT : ANCHOR_JOINT + 1] - relative
        loss = (offset**2).sum(-1).mean() / 1e-4 + joint_limit_penalty(
            p.hand_pose, limit_frames, limits).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return p.detach()


def better_start(hand_model: HandModel, a: FitParameters, b: FitParameters,
                 obs: TrackObservations, limit_frames: torch.Tensor, weights: FitWeights
                 ) -> tuple[FitParameters, bool]:
    """The start that explains the track's detections and teacher 3D better (the median over
    the frames where both are defined), completed by the other where it is undefined, and
    whether that is ``a``.

    Chosen per track, not per frame: two starts can put the hand at different depths (the
    network's depth is its own guess, the teacher's comes from PnP with a metric hand), and a
    track that jumps between them is one no temporal fit can mend.
    """
    with torch.no_grad():
        score_a = _data_score(hand_model, a, obs, limit_frames, weights)
        score_b = _data_score(hand_model, b, obs, limit_frames, weights)
    both = torch.isfinite(score_a) & torch.isfinite(score_b)
    if both.any():
        prefer_a = bool(score_a[both].median() <= score_b[both].median())
    else:
        prefer_a = bool(torch.isfinite(score_a).sum() >= torch.isfinite(score_b).sum())
    primary, score, other = (a, score_a, b) if prefer_a else (b, score_b, a)
    return primary.select(torch.isfinite(score), other), prefer_a


def _data_score(hand_model, p, obs, limit_frames, weights) -> torch.Tensor:
    """(T,) each frame's reprojection, teacher-3D (per frame, not smoothed: every frame is
    judged on its own evidence) and joint-angle terms; inf where the start is undefined."""
    finite = (torch.isfinite(p.anchor).all(-1) & torch.isfinite(p.global_orient).all(-1)
              & torch.isfinite(p.hand_pose).all(-1).all(-1))
    safe = FitParameters(p.global_orient.nan_to_num(), p.hand_pose.nan_to_num(),
                         torch.where(finite[:, None], p.anchor,
                                     torch.tensor([0.0, 0.0, 1.0]).to(p.anchor)),
                         p.betas, p.log_scale)
    joints = pose_joints(hand_model, safe)
    score = data_terms(project_in_front(joints, obs.K), joints, safe.hand_pose, obs,
                       limit_frames, weights)
    return torch.where(finite & torch.isfinite(score), score, torch.inf)


def data_terms(projected: torch.Tensor, joints: torch.Tensor, hand_pose: torch.Tensor,
               obs: TrackObservations, limit_frames: torch.Tensor, weights: FitWeights,
               no_teacher: float = float("nan")) -> torch.Tensor:
    """(T,) each frame's weighted reprojection, teacher-3D and joint-angle terms, from its
    ``projected`` (T, 21, 2) and ``joints`` (T, 21, 3) and ``hand_pose`` (T, 15, 3); a frame
    without teacher 3D takes ``no_teacher`` for that term (NaN: the frame is not scored)."""
    limits = torch.tensor(np.radians(limits_deg()), dtype=joints.dtype, device=joints.device)
    teacher = terms.teacher_3d(joints, obs.teacher, obs.teacher_confidence)
    return (weights.reprojection * terms.reprojection(projected, obs.keypoints, obs.weights,
                                                      obs.hand_size)
            + weights.teacher_3d * teacher.nan_to_num(no_teacher)
            + weights.joint_angle * joint_limit_penalty(hand_pose, limit_frames, limits))
