"""pytorch3d backend, for users who install pytorch3d (it has no Linux package on PyPI).

NOT VERIFIED on this project's machines: pytorch3d cannot be installed there. The test
``tests/test_render.py::test_pytorch3d_matches_deodr`` compares it with the DEODR backend
and runs wherever pytorch3d imports.

Rasterisation is batched (on CUDA when the tensors are). The silhouette is soft, with the
formula of pytorch3d's SoftSilhouetteShader, so it has vertex gradients. The image takes the
nearest face's interpolated colour, and the depth is the nearest z.
"""

from __future__ import annotations

import math

import torch
from pytorch3d.ops import interpolate_face_attributes
from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
from pytorch3d.structures import Meshes
from pytorch3d.utils import cameras_from_opencv_projection

from .base import Light, RenderOutput, shade


class Pytorch3dRenderer:
    name = "pytorch3d"

    def __init__(self, sigma: float = 1e-4, faces_per_pixel: int = 8):
        self.sigma = sigma
        self.faces_per_pixel = faces_per_pixel

    def render(self, vertices: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor,
               K: torch.Tensor, height: int, width: int, light: Light) -> RenderOutput:
        batch = vertices.shape[0]
        vertices = vertices.float()
        lit = shade(vertices, faces, colors.float(), light)
        device = vertices.device
        cameras = cameras_from_opencv_projection(
            R=torch.eye(3, device=device).expand(batch, 3, 3),
            tvec=torch.zeros(batch, 3, device=device),
            camera_matrix=K.float().to(device),
            image_size=torch.tensor([[height, width]], device=device).expand(batch, 2),
        )
        settings = RasterizationSettings(
            image_size=(height, width),
            blur_radius=math.log(1.0 / 1e-4 - 1.0) * self.sigma,
            faces_per_pixel=self.faces_per_pixel,
        )
        meshes = Meshes(verts=list(vertices), faces=[faces.to(device)] * batch)
        fragments = MeshRasterizer(cameras=cameras, raster_settings=settings)(meshes)
        covered = fragments.pix_to_face >= 0  # (B, H, W, F)
        face_colors = lit[:, faces].reshape(-1, 3, 3)  # packed faces, per corner
        pixel_colors = interpolate_face_attributes(fragments.pix_to_face, fragments.bary_coords,
                                                   face_colors)
        probability = torch.sigmoid(-fragments.dists / self.sigma) * covered
        silhouette = 1.0 - torch.prod(1.0 - probability, dim=-1)
        nearest = covered[..., 0]
        image = torch.where(nearest[..., None], pixel_colors[..., 0, :],
                            torch.zeros_like(pixel_colors[..., 0, :]))
        depth = torch.where(nearest, fragments.zbuf[..., 0], torch.zeros_like(silhouette))
        return RenderOutput(image, silhouette, depth)
