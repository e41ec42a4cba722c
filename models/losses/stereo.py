"""Seed 002's binocular self-supervision, on a calibrated rig (METHOD.md section 3).

The seed warps one rectified view into the other with the disparity of the left mesh's
depth. On a calibrated rig that is not rectified the mesh itself is the warp: the mesh
predicted from camera i is carried into camera j with the extrinsics (``carry``), rendered
there with each vertex's pixel position in camera i as its colour, and camera i's image is
sampled at those positions (``warp_into``): what camera j should see where the hand is, if
the mesh is right. Then, with the seed's default weights (``StereoWeights``):

- photo-consistency alpha/2 (1 - SSIM) + (1 - alpha) L1 of the warped image against camera
  j's, inside the hand mask;
- the mask loss, mean (M - rendered M)^2;
- Chamfer distance and normal consistency between the meshes predicted from each view, in
  one camera's frame;
- the edge loss against a frozen pre-trained model's pseudo-mesh, and the Laplacian.

Shapes: B pairs; V vertices; images (B, H, W, 3) in [0, 1]; masks (B, H, W).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import kornia
import torch

from ..geometry import project
from ..render.base import Light, Renderer, vertex_normals
from .mesh import chamfer_distance, edge_length_loss, laplacian_loss

PHOTO_ALPHA = 0.85  # the seed's SSIM/L1 balance (Monodepth's)


@dataclass(frozen=True)
class StereoWeights:
    """The seed's weights; 0 switches a term off."""

    photo: float = 100.0
    edge: float = 1.0
    laplacian: float = 10.0
    mask: float = 0.1
    chamfer: float = 0.001
    normal: float = 0.001


def carry(vertices: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) camera-i points in camera j: x_j = R x_i + t, with R (B, 3, 3), t (B, 3)."""
    return torch.einsum("bij,bvj->bvi", R, vertices) + t[:, None]


def warp_into(renderer: Renderer, vertices_i: torch.Tensor, faces: torch.Tensor,
              K_i: torch.Tensor, image_i: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
              K_j: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera i's image as camera j sees it through the mesh: (warped (B, H, W, 3),
    silhouette (B, H, W)) in camera j's image of ``height`` x ``width``.

    Args:
        vertices_i: (B, V, 3) the mesh in camera i's frame, metres.
        faces: (F, 3).
        K_i, K_j: (B, 3, 3) intrinsics of the two images (crops' or frames').
        image_i: (B, Hi, Wi, 3) camera i's image.
        R, t: (B, 3, 3), (B, 3) camera i to camera j.
    """
    if vertices_i.dim() != 3 or vertices_i.shape[-1] != 3:
        raise ValueError(f"expected (B, V, 3) vertices, got {tuple(vertices_i.shape)}")
    in_i = project(vertices_i, K_i)  # (B, V, 2) pixels of camera i
    size_i = torch.tensor([image_i.shape[2], image_i.shape[1]], dtype=in_i.dtype,
                          device=in_i.device)
    # each vertex's normalised position in image i, as a colour the renderer interpolates
    colours = torch.cat([(in_i + 0.5) / size_i, torch.zeros_like(in_i[..., :1])], -1)
    light = Light.ambient_only(len(vertices_i), 1.0, device=vertices_i.device)
    out = renderer.render(carry(vertices_i, R, t), faces, colours, K_j, height, width, light)
    grid = out.image[..., :2] * 2 - 1
    warped = torch.nn.functional.grid_sample(image_i.permute(0, 3, 1, 2), grid,
                                             align_corners=False, padding_mode="border")
    return warped.permute(0, 2, 3, 1), out.silhouette


def photo_consistency(warped: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      alpha: float = PHOTO_ALPHA, window: int = 7) -> torch.Tensor:
    """() mean over the mask of alpha/2 (1 - SSIM) + (1 - alpha) |warped - target|
    (SSIM from kornia; per sample, then over the batch)."""
    ssim = kornia.metrics.ssim(warped.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2),
                               window).mean(1)
    per_pixel = alpha / 2 * (1 - ssim) + (1 - alpha) * (warped - target).abs().mean(-1)
    area = mask.sum(dim=(1, 2)).clamp_min(1.0)
    return ((per_pixel * mask).sum(dim=(1, 2)) / area).mean()


def mask_loss(silhouette: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """() mean (M - rendered M)^2."""
    return ((mask - silhouette) ** 2).mean()


def normal_agreement(vertices_a: torch.Tensor, vertices_b: torch.Tensor, faces: torch.Tensor
                     ) -> torch.Tensor:
    """() mean 1 - cos between the vertex normals of two meshes of one topology (the same
    hand predicted from two views, in one frame)."""
    cosine = (vertex_normals(vertices_a, faces) * vertex_normals(vertices_b, faces)).sum(-1)
    return (1 - cosine).mean()


def stereo_losses(renderer: Renderer, faces: torch.Tensor, vertices_i: torch.Tensor,
                  vertices_j: torch.Tensor, pseudo_i: torch.Tensor, image_i: torch.Tensor,
                  image_j: torch.Tensor, mask_j: torch.Tensor, K_i: torch.Tensor,
                  K_j: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
                  weights: StereoWeights = StereoWeights()) -> dict[str, torch.Tensor]:
    """Every term of one direction (i carried into j), weighted, and their ``total``.

    ``vertices_j`` is the mesh predicted from camera j (in j's frame); ``pseudo_i`` the frozen
    model's mesh from camera i (the edge loss's reference). Terms of weight 0 are not
    computed (the rendering is skipped when photo and mask are both off)."""
    terms: dict[str, torch.Tensor] = {}
    if weights.photo or weights.mask:
        height, width = image_j.shape[1:3]
        warped, silhouette = warp_into(renderer, vertices_i, faces, K_i, image_i, R, t, K_j,
                                       height, width)
        if weights.photo:
            terms["photo"] = photo_consistency(warped, image_j, mask_j * silhouette.detach())
        if weights.mask:
            terms["mask"] = mask_loss(silhouette, mask_j)
    carried = carry(vertices_i, R, t)
    if weights.chamfer:
        terms["chamfer"] = chamfer_distance(carried, vertices_j)
    if weights.normal:
        terms["normal"] = normal_agreement(carried, vertices_j, faces)
    if weights.edge:
        terms["edge"] = edge_length_loss(vertices_i, pseudo_i.detach(), faces)
    if weights.laplacian:
        terms["laplacian"] = laplacian_loss(vertices_i, faces)
    scale = asdict(weights)
    weighted = {name: scale[name] * value for name, value in terms.items()}
    return {**weighted, "total": sum(weighted.values())}
