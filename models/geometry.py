"""Pinhole geometry in torch, for a general 3x3 projection matrix K (an augmented crop's K is
a rotation of the crop's pixels after the camera's intrinsics, so it need not be triangular)."""

from __future__ import annotations

import torch


def project(points: torch.Tensor, K: torch.Tensor, min_depth: float | None = None
            ) -> torch.Tensor:
    """Pixels of camera-frame points: the pipeline's one pinhole projection in torch.

    Args:
        points: (..., N, 3) camera-frame points.
        K: (..., 3, 3) projection matrices, one per leading index.
        min_depth: when given, points are first held at least this far in front of the
            camera: a point at or behind the camera plane has no useful projection, and a
            fit's start that puts one there must not blow its objective up.

    Returns:
        (..., N, 2) pixels.

    >>> K = torch.tensor([[[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]]])
    >>> project(torch.tensor([[[0.1, -0.2, 2.0]]]), K)
    tensor([[[55., 30.]]])
    """
    if points.shape[-1] != 3 or K.shape[-2:] != (3, 3):
        raise ValueError(f"expected (..., N, 3) points and (..., 3, 3) K, got "
                         f"{tuple(points.shape)} and {tuple(K.shape)}")
    if min_depth is not None:
        points = torch.cat([points[..., :2], points[..., 2:].clamp_min(min_depth)], dim=-1)
    uvw = torch.einsum("...ij,...nj->...ni", K, points)
    return uvw[..., :2] / uvw[..., 2:].clamp_min(1e-6)


def backproject(pixels: torch.Tensor, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(B, 2) pixels at camera depth (B,) -> (B, 3) camera-frame points."""
    homogeneous = torch.cat([pixels, torch.ones_like(pixels[:, :1])], -1)
    ray = torch.linalg.solve(K, homogeneous.unsqueeze(-1)).squeeze(-1)
    return ray / ray[:, 2:3] * depth[:, None]


def focal_length(K: torch.Tensor) -> torch.Tensor:
    """(B,) the focal length in pixels, unchanged by in-plane rotations of the image."""
    return torch.linalg.det(K[:, :2, :2]).abs().sqrt()


def rotation_about(center: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) pixel transform rotating images by ``angle`` (B,) radians about ``center``
    (B, 2); the new K of a rotated crop is ``rotation_about(...) @ K``."""
    cos, sin = angle.cos(), angle.sin()
    matrix = torch.zeros(angle.shape[0], 3, 3, dtype=angle.dtype, device=angle.device)
    matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 1, 0], matrix[:, 1, 1] = cos, -sin, sin, cos
    matrix[:, :2, 2] = center - torch.einsum("bij,bj->bi", matrix[:, :2, :2], center)
    matrix[:, 2, 2] = 1.0
    return matrix
