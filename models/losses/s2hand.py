"""The S2HAND losses of METHOD.md section 1 that are not mesh or photometric losses, with their
default weights (``DEFAULT_WEIGHTS``, the public code's end-to-end configuration).

Shapes: keypoints (B, 21, 2) pixels in METHOD's joint order; confidence (B, 21) in [0, 1];
joints_3d (B, 21, 3) metres; betas (B, S); face colours (B, F, 3).
"""

from __future__ import annotations

import torch

from ..detectors.schema import BONES

DEFAULT_WEIGHTS = {
    "reprojection": 1e-3, "bone_direction": 0.1, "branch_2d": 1e-3, "consistency_2d3d": 2e-4,
    "scale": 0.1, "joint_angle": 0.1, "shape": 1e-2, "laplacian": 0.1, "photometric": 5e-3,
    "mean_colour": 1e-3, "texture_outliers": 5e-3,
}
ROBUST_KNEE_PX = 5.0
# wrist 2, fingertips 1.5, others 1 (METHOD's joint weights)
JOINT_WEIGHTS = torch.tensor([2.0] + [1.0, 1.0, 1.0, 1.5] * 5)
MIDDLE_MCP, MIDDLE_PIP = 9, 10
MIDDLE_PROXIMAL_LENGTH = 0.0282  # metres: the scale prior for MANO's skeleton (METHOD.md)
_PARENTS = torch.tensor([p for p, _ in BONES])
_CHILDREN = torch.tensor([c for _, c in BONES])


def robust_distance(d: torch.Tensor) -> torch.Tensor:
    """d^2 / 10 below 5 px, d - 2.5 above: quadratic near, linear far, C1 at the knee."""
    return torch.where(d < ROBUST_KNEE_PX, d**2 / (2 * ROBUST_KNEE_PX), d - ROBUST_KNEE_PX / 2)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp_min(1e-8)


def reprojection_loss(projected: torch.Tensor, detected: torch.Tensor, confidence: torch.Tensor
                      ) -> torch.Tensor:
    """Robust distance weighted by (confidence x joint weight)^2, normalised by the weights."""
    weights = (confidence * JOINT_WEIGHTS.to(confidence)) ** 2
    return _weighted_mean(robust_distance((projected - detected).norm(dim=-1)), weights)


def _unit_bones(keypoints: torch.Tensor) -> torch.Tensor:
    vectors = keypoints[:, _CHILDREN] - keypoints[:, _PARENTS]
    return torch.nn.functional.normalize(vectors, dim=-1)


def bone_direction_loss(projected: torch.Tensor, detected: torch.Tensor,
                        confidence: torch.Tensor) -> torch.Tensor:
    """Squared difference of the 20 unit 2D bone vectors, weighted by endpoint confidences."""
    weights = confidence[:, _PARENTS] * confidence[:, _CHILDREN]
    difference = (_unit_bones(projected) - _unit_bones(detected)).pow(2).sum(-1)
    return _weighted_mean(difference, weights)


def branch_2d_loss(branch: torch.Tensor, detected: torch.Tensor, confidence: torch.Tensor
                   ) -> torch.Tensor:
    """The 2D branch's keypoints vs the detections: squared px distance weighted by conf^2."""
    return _weighted_mean((branch - detected).pow(2).sum(-1), confidence**2)


def consistency_2d3d_loss(projected: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """Projected 3D joints vs the 2D branch's keypoints, robust distance, all joints equal."""
    return robust_distance((projected - branch).norm(dim=-1)).mean()


def scale_prior_loss(joints_3d: torch.Tensor, reference: float = MIDDLE_PROXIMAL_LENGTH
                     ) -> torch.Tensor:
    """L1 between the middle finger's MCP-PIP bone length and ``reference`` (2.82 cm for
    MANO; another hand model's skeleton needs its own mean-shape length, see
    ``hand.limits.rest_middle_proximal_length``)."""
    length = (joints_3d[:, MIDDLE_PIP] - joints_3d[:, MIDDLE_MCP]).norm(dim=-1)
    return (length - reference).abs().mean()


def shape_prior_loss(betas: torch.Tensor) -> torch.Tensor:
    return betas.pow(2).mean()


def mean_colour_loss(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     sample_weight: torch.Tensor) -> torch.Tensor:
    """Mean rendered colour vs mean input colour under the silhouette, per-sample weighted."""
    area = mask.sum(dim=(1, 2)).clamp_min(1.0)[:, None]
    mean_rendered = (rendered * mask[..., None]).sum(dim=(1, 2)) / area
    mean_target = (target * mask[..., None]).sum(dim=(1, 2)) / area
    per_sample = (mean_rendered - mean_target).abs().mean(-1)
    return (per_sample * sample_weight).sum() / sample_weight.sum().clamp_min(1e-8)


def texture_outlier_loss(face_colours: torch.Tensor, sigmas: float = 2.0) -> torch.Tensor:
    """Face colours beyond ``sigmas`` standard deviations of their mean, squared excess."""
    mean = face_colours.mean(dim=1, keepdim=True)
    spread = face_colours.std(dim=1, keepdim=True)
    excess = torch.relu((face_colours - mean).abs() - sigmas * spread)
    return excess.pow(2).sum(-1).mean()
