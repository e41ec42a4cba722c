"""The hand model interface.

Pose is a global rotation plus 15 joint rotations, as axis-angle ``(B, 3)`` and ``(B, 15, 3)``
or as unit quaternions (``pose_from_quaternions``; roma's xyzw convention). Output: vertices
``(B, V, 3)`` and 21 joints ``(B, 21, 3)`` in the file order of METHOD.md section 4, in the
model's frame (metres), right hand. ``joint_offsets`` ``(B, K, 3)`` (K: the model's own
skeleton joints, in its kinematic order, metres in the rest pose) move the rest skeleton
before posing, with the mesh following its bones: a person's proportions, which the
sequence fit solves per track. Left hands are reconstructed as right hands in a mirrored
view and brought back with :func:`mirror`.
"""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch


@dataclass
class HandOutput:
    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, 21, 3), METHOD.md order


class HandModel(torch.nn.Module):
    """Batched and differentiable; buffers follow ``.to(device)``."""

    n_shape: int
    faces: torch.Tensor  # (F, 3) long

    parents: list[int]  # the K skeleton joints' parents (-1: root), parents first

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor,
                betas: torch.Tensor, joint_offsets: torch.Tensor | None = None) -> HandOutput:
        raise NotImplementedError

    def joints_only(self, global_orient: torch.Tensor, hand_pose: torch.Tensor,
                    betas: torch.Tensor, joint_offsets: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """(B, 21, 3) the joints of ``forward``; a model may compute them without the mesh."""
        return self.forward(global_orient, hand_pose, betas, joint_offsets).joints


def pose_from_quaternions(quaternions: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit quaternions (xyzw) -> (..., 3) axis-angle."""
    return roma.unitquat_to_rotvec(roma.quat_normalize(quaternions))


def mirror(output: HandOutput) -> HandOutput:
    """The mirror image (x -> -x): a right hand becomes a left hand, and back."""
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=output.vertices.dtype,
                        device=output.vertices.device)
    return HandOutput(output.vertices * flip, output.joints * flip)


def mirrored_faces(faces: torch.Tensor) -> torch.Tensor:
    """Faces with reversed winding, so a mirrored mesh keeps outward normals."""
    return faces[:, [0, 2, 1]]
