"""Anatomical joint-angle limits and the joint-angle prior (METHOD.md: penalty only outside
the box).

Each joint gets a frame from the rest skeleton: flexion (bends the bone towards the palm, or
across it for the thumb), abduction (sideways in the palm plane) and twist (about the bone).
A joint's axis-angle is read along these three axes. That is exact for rotations about one
axis, and close for the small combined rotations of the other two.

Ranges in degrees (flexion, abduction, twist), after the usual clinical ranges of motion
(for example the AAOS tables), rounded generously so that real hands are never penalised.
"""

from __future__ import annotations

import numpy as np
import torch

from .anatomy import PALMAR, THUMB_PALMAR, bones

# (low, high) per axis: flexion, abduction, twist
_FINGER = {"mcp": ((-30, 95), (-25, 25), (-15, 15)), "pip": ((-10, 115), (-8, 8), (-8, 8)),
           "dip": ((-20, 90), (-8, 8), (-8, 8))}
_THUMB = {"cmc": ((-30, 60), (-40, 50), (-30, 30)), "mcp": ((-20, 70), (-15, 15), (-15, 15)),
          "ip": ((-20, 90), (-10, 10), (-10, 10))}


def limits_deg() -> np.ndarray:
    """(16, 3, 2) low/high per joint and axis in degrees; row 0 (global rotation) is free."""
    table = np.zeros((16, 3, 2))
    table[0] = [(-180, 180)] * 3
    for first, names in ((1, "mcp pip dip"), (4, "mcp pip dip"), (7, "mcp pip dip"),
                         (10, "mcp pip dip")):
        for offset, name in enumerate(names.split()):
            table[first + offset] = _FINGER[name]
    for offset, name in enumerate(("cmc", "mcp", "ip")):
        table[13 + offset] = _THUMB[name]
    return table


def joint_frames(rest_joints: np.ndarray, palm_normal: np.ndarray = PALMAR,
                 thumb_palmar: np.ndarray = THUMB_PALMAR) -> np.ndarray:
    """(16, 3, 3) rows = flexion, abduction, twist axes of each joint, from a rest skeleton
    (21 joints: MANO's 16 in its order, then tips thumb, index, middle, ring, pinky)."""
    frames = np.zeros((16, 3, 3))
    frames[0] = np.eye(3)
    for joint, end in bones():
        twist = rest_joints[end] - rest_joints[joint]
        twist /= np.linalg.norm(twist)
        palmar = thumb_palmar if joint >= 13 else palm_normal
        flexion = np.cross(twist, palmar)
        flexion /= np.linalg.norm(flexion)
        frames[joint] = [flexion, np.cross(twist, flexion), twist]
    return frames


def joint_angles(hand_pose: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """(B, 15, 3) angles (rad) along each joint's flexion, abduction and twist axes."""
    return torch.einsum("bjc,jac->bja", hand_pose, frames[1:].to(hand_pose))


def joint_limit_penalty(hand_pose: torch.Tensor, frames: torch.Tensor,
                        limits_rad: torch.Tensor) -> torch.Tensor:
    """(B,) sum of squared excursions outside the limits; zero inside them."""
    angles = joint_angles(hand_pose, frames)
    low, high = limits_rad[1:, :, 0].to(angles), limits_rad[1:, :, 1].to(angles)
    excess = torch.relu(angles - high) + torch.relu(low - angles)
    return (excess**2).sum(dim=(1, 2))


def model_limit_frames(model: torch.nn.Module) -> torch.Tensor:
    """(16, 3, 3) joint frames of a hand model, from its own rest skeleton (zero pose and
    shape), for the joint-angle prior."""
    from .mano import TO_FILE_ORDER

    with torch.no_grad():
        joints = model(torch.zeros(1, 3), torch.zeros(1, 15, 3),
                       torch.zeros(1, model.n_shape)).joints[0].double().cpu().numpy()
    mano_order = np.empty_like(joints)
    mano_order[list(TO_FILE_ORDER)] = joints
    return torch.tensor(joint_frames(mano_order), dtype=torch.float32)


def rest_middle_proximal_length(model: torch.nn.Module) -> float:
    """The hand model's middle MCP-PIP length at its mean shape (metres): the scale prior's
    reference. MANO's is METHOD.md's 2.82 cm; the embedded hand's anatomical skeleton has
    5.2 cm, and holding it to 2.82 cm would shrink every hand (and its depth) to 54%."""
    with torch.no_grad():
        joints = model(torch.zeros(1, 3), torch.zeros(1, 15, 3),
                       torch.zeros(1, model.n_shape)).joints[0]
    return float((joints[10] - joints[9]).norm())
