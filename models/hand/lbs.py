"""Linear blend skinning with shape and pose blend shapes (the MANO / SMPL formulation).

    v_shaped = v_template + shapedirs . betas
    J        = J_regressor . v_shaped
    v_posed  = v_shaped + posedirs . (R_1..R_15 - I)          (pose blend shapes)
    G_k      = G_parent(k) [R_k | J_k - J_parent(k)]            (kinematic chain)
    v        = sum_k w_k (G_k - G_k J_k) v_posed                 (skinning)
"""

from __future__ import annotations

import roma
import torch


def personalise_rest(v_shaped: torch.Tensor, joints: torch.Tensor, weights: torch.Tensor,
                     offsets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The rest mesh (B, V, 3) and skeleton (B, K, 3) with each skeleton joint moved by
    ``offsets`` (B, K, 3), or unchanged for None: a person's own proportions on the model's
    skeleton. Each vertex moves by the skinning-weighted (``weights`` (V, K)) offsets of its
    joints, so the surface stays on its bones.

    >>> v, j = torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)
    >>> w = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    >>> moved, skeleton = personalise_rest(v, j, w, torch.tensor([[[0.0, 0, 0], [0, 0.02, 0]]]))
    >>> moved[0, :, 1].tolist(), skeleton[0, :, 1].tolist()
    ([0.0, 0.009999999776482582], [0.0, 0.019999999552965164])
    """
    if offsets is None:
        return v_shaped, joints
    if offsets.shape[-2:] != joints.shape[-2:]:
        raise ValueError(f"expected joint offsets (B, {joints.shape[-2]}, 3), got "
                         f"{tuple(offsets.shape)}")
    return v_shaped + torch.einsum("vk,bkc->bvc", weights, offsets), joints + offsets


def rigid_transforms(rotations: torch.Tensor, joints: torch.Tensor, parents: list[int]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """World transforms (B, K, 4, 4) of each joint and the posed joint positions (B, K, 3).

    ``parents[k]`` is k's parent index, -1 for the root; parents come before children.
    """
    batch, n_joints = rotations.shape[:2]
    local = torch.zeros((batch, n_joints, 4, 4), dtype=rotations.dtype, device=rotations.device)
    local[..., :3, :3] = rotations
    local[..., 3, 3] = 1.0
    offsets = joints.clone()
    for k, parent in enumerate(parents):
        if parent >= 0:
            offsets[:, k] = joints[:, k] - joints[:, parent]
    local[..., :3, 3] = offsets
    world = [local[:, 0]]
    for k in range(1, n_joints):
        world.append(world[parents[k]] @ local[:, k])
    world = torch.stack(world, dim=1)
    return world, world[..., :3, 3]


def blend_skinning(v_shaped: torch.Tensor, joints: torch.Tensor, posedirs: torch.Tensor | None,
                   weights: torch.Tensor, parents: list[int], pose: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed vertices (B, V, 3) and posed skeleton joints (B, K, 3).

    v_shaped (B, V, 3) and joints (B, K, 3) are the shaped rest mesh and skeleton; posedirs
    (P, V*3) with P = (K-1)*9, or None for no pose blend shapes; weights (V, K); pose
    (B, K, 3) axis-angle.
    """
    batch = pose.shape[0]
    rotations = roma.rotvec_to_rotmat(pose)
    v_posed = v_shaped
    if posedirs is not None:
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        pose_feature = (rotations[:, 1:] - eye).reshape(batch, -1)
        v_posed = v_shaped + (pose_feature @ posedirs).reshape(batch, -1, 3)
    world, posed_joints = rigid_transforms(rotations, joints, parents)
    rest = torch.einsum("bkij,bkj->bki", world[..., :3, :3], joints)
    skinning = world.clone()
    skinning[..., :3, 3] = world[..., :3, 3] - rest  # transforms of rest-pose points
    per_vertex = torch.einsum("vk,bkij->bvij", weights, skinning)
    vertices = torch.einsum("bvij,bvj->bvi", per_vertex[..., :3, :3], v_posed) + per_vertex[
        ..., :3, 3]
    return vertices, posed_joints
