"""Test-time refinement: a few optimisation steps of a prediction's pose, shape and camera
against the weighted 2D keypoints, with the priors of training (METHOD.md section 1's
reprojection, bone direction, joint-angle, shape and scale losses, same weights).

Starts from the network's prediction, so it corrects small misfits (a finger off its
detection) rather than searching for the pose; with unreliable detections it can follow their
errors, which is why it is optional and measured (bench/accuracy.py).
"""

from __future__ import annotations

import numpy as np
import torch

from .geometry import project
from .hand.base import HandModel
from .hand.limits import joint_limit_penalty, limits_deg, rest_middle_proximal_length
from .losses import s2hand
from .network import S2HandPrediction
from .network.s2hand import place_hand

REFINED = ("global_orient", "hand_pose", "betas", "translation", "scale")


def refine(hand_model: HandModel, pred: S2HandPrediction, keypoints: torch.Tensor,
           confidence: torch.Tensor, K: torch.Tensor, limit_frames: torch.Tensor,
           steps: int = 20, learning_rate: float = 0.01) -> S2HandPrediction:
    """A refined copy of ``pred`` (parameters, vertices, joints, projections)."""
    if steps <= 0:
        return pred
    params = {name: getattr(pred, name).detach().clone().requires_grad_(True) for name in REFINED}
    optimizer = torch.optim.Adam(params.values(), lr=learning_rate)
    limits = torch.tensor(np.radians(limits_deg()), dtype=torch.float32)
    weights = s2hand.DEFAULT_WEIGHTS
    reference = rest_middle_proximal_length(hand_model)
    for _ in range(steps):
        vertices, joints = place_hand(hand_model, params["global_orient"], params["hand_pose"],
                                      params["betas"], params["translation"], params["scale"])
        projected = project(joints, K)
        loss = (weights["reprojection"] * s2hand.reprojection_loss(projected, keypoints,
                                                                   confidence)
                + weights["bone_direction"] * s2hand.bone_direction_loss(projected, keypoints,
                                                                         confidence)
                + weights["joint_angle"] * joint_limit_penalty(params["hand_pose"], limit_frames,
                                                               limits).mean()
                + weights["shape"] * s2hand.shape_prior_loss(params["betas"])
                + weights["scale"] * s2hand.scale_prior_loss(joints, reference))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        vertices, joints = place_hand(hand_model, params["global_orient"], params["hand_pose"],
                                      params["betas"], params["translation"], params["scale"])
    refined = {name: value.detach() for name, value in params.items()}
    return S2HandPrediction(**{**pred.__dict__, **refined, "vertices": vertices,
                               "joints_3d": joints, "joints_2d": project(joints, K)})
