"""Joint-angle limits on the default hand: zero inside the anatomical box, growing outside."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handlabel.models.hand.anatomy import flexion_axes, rest_skeleton
from handlabel.models.hand.limits import (
    joint_angles,
    joint_frames,
    joint_limit_penalty,
    limits_deg,
)

FRAMES = torch.tensor(joint_frames(rest_skeleton()), dtype=torch.float32)
LIMITS = torch.tensor(np.radians(limits_deg()), dtype=torch.float32)


def pose_about(joint: int, axis_row: int, degrees: float) -> torch.Tensor:
    pose = torch.zeros(1, 15, 3)
    pose[0, joint - 1] = FRAMES[joint, axis_row] * np.radians(degrees)
    return pose


def test_frames_are_orthonormal_and_share_the_models_flexion_axes():
    for joint in range(1, 16):
        np.testing.assert_allclose(FRAMES[joint] @ FRAMES[joint].T, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(FRAMES[1:, 0], flexion_axes()[1:], atol=1e-6)


def test_angles_read_back_along_each_axis():
    angles = joint_angles(pose_about(5, 1, 12.0), FRAMES)
    np.testing.assert_allclose(np.degrees(angles[0, 4].numpy()), [0.0, 12.0, 0.0], atol=1e-4)


@pytest.mark.parametrize(("joint", "axis", "degrees", "inside"), [
    (1, 0, 80.0, True),     # index MCP flexed: fine
    (2, 0, 100.0, True),    # index PIP flexed: fine
    (2, 0, -30.0, False),   # PIP hyperextended 30 degrees: impossible
    (2, 1, 25.0, False),    # PIP bent sideways: impossible
    (1, 1, 15.0, True),     # MCP spread: fine
    (13, 1, 40.0, True),    # thumb CMC abduction: fine
    (12, 2, 40.0, False),   # DIP twisted: impossible
])
def test_penalty_is_zero_inside_and_positive_outside(joint, axis, degrees, inside):
    penalty = joint_limit_penalty(pose_about(joint, axis, degrees), FRAMES, LIMITS)
    assert (penalty.item() == 0) == inside


def test_penalty_gradient_pushes_back_into_range():
    pose = pose_about(2, 0, -30.0).requires_grad_(True)
    joint_limit_penalty(pose, FRAMES, LIMITS).sum().backward()
    step = -pose.grad[0, 1] @ FRAMES[2, 0]
    assert step > 0  # towards flexion, out of hyperextension
