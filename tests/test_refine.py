"""Test-time refinement: from a perturbed prediction, a few steps against exact keypoints
bring the projection and the 3D joints closer to the truth."""

from __future__ import annotations

import torch

from handlabel.models.geometry import project
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.network import S2HandPrediction
from handlabel.models.network.s2hand import place_hand
from handlabel.models.refine import refine


def prediction(hand, orient, pose, betas, anchor, scale, K) -> S2HandPrediction:
    vertices, joints = place_hand(hand, orient, pose, betas, anchor, scale)
    n = orient.shape[0]
    return S2HandPrediction(orient, pose, betas, scale, anchor, vertices, joints,
                            project(joints, K), torch.zeros(n, vertices.shape[1], 3),
                            torch.zeros(n, 11), torch.zeros(n, 21, 2), torch.zeros(n, 21, 4, 4))


def test_refinement_pulls_a_perturbed_hand_onto_its_keypoints():
    torch.manual_seed(0)
    hand, n = DefaultHandModel(), 4
    K = torch.tensor([[300.0, 0, 111.5], [0, 300, 111.5], [0, 0, 1]]).expand(n, 3, 3)
    orient = torch.tensor([[3.0, 0.0, 0.0]]).repeat(n, 1)  # palm towards the camera
    pose = torch.zeros(n, 15, 3)
    pose[:, 3:6, 0] = 0.6  # some finger flexion
    anchor = torch.tensor([[0.0, 0.0, 0.5]]).repeat(n, 1)
    truth = prediction(hand, orient, pose, torch.zeros(n, 10), anchor, torch.ones(n), K)

    start = prediction(hand, orient + 0.15 * torch.randn(n, 3), pose + 0.2 * torch.randn(n, 15, 3),
                       torch.zeros(n, 10), anchor + torch.tensor([0.01, -0.01, 0.03]),
                       torch.ones(n), K)
    refined = refine(hand, start, truth.joints_2d, torch.ones(n, 21), K,
                     model_limit_frames(hand), steps=80, learning_rate=0.01)

    def px(p):
        return float((p.joints_2d - truth.joints_2d).norm(dim=-1).mean())

    def mm(p):
        return float(1000 * (p.joints_3d - truth.joints_3d).norm(dim=-1).mean())

    assert px(refined) < 0.4 * px(start), (px(start), px(refined))
    assert mm(refined) < mm(start), (mm(start), mm(refined))
    assert refined.hand_pose.shape == start.hand_pose.shape and not refined.joints_3d.requires_grad
