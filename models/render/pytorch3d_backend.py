"""pytorch3d backend: batched rasterisation (on CUDA when the tensors are), DEODR's coverage.

pytorch3d has no Linux package on PyPI; ``HANDLABEL_PYTORCH3D=1 make setup`` installs the
vendored build (README). It is used only when asked for (``train.renderer: pytorch3d``, or
``auto`` on CUDA), and is checked against DEODR and analytic cases in ``tests/test_render.py``.

Pixel centres are at integer coordinates of K, as in DEODR and OpenCV (pytorch3d's own
OpenCV camera conversion puts them half a pixel off). Coverage follows the DEODR backend's
convention, in pixels, so the two backends draw the same
shape: a pixel whose centre lies inside a front face is covered (1), and a pixel outside the
mesh is covered by ``1 - d / sigma``, d its distance in pixels to the nearest front face (the
antialiasing band DEODR overdraws outside silhouette edges, sigma = 1 px); the projected
area grows by perimeter x sigma / 2. Vertex gradients come from that band, through
pytorch3d's differentiable face distances. (pytorch3d's own SoftSilhouetteShader composes a
sigmoid of squared NDC distances over every nearby face, interior edges included: on a 642-
vertex sphere it left 74% of the interior pixels below 0.99 and lost 2-8% of the area.)

Colour and depth are composited front to back over the nearest faces, each face counting
with its coverage, and divided by the total, like DEODR's normalised channels; where the
hand is not covered both are 0.
"""

from __future__ import annotations

import torch
from pytorch3d.ops import interpolate_face_attributes
from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
from pytorch3d.structures import Meshes
from pytorch3d.utils import cameras_from_opencv_projection

from .base import Light, RenderOutput, renderable, shade

_BEHIND = torch.tensor([0.0, 0.0, -1.0])  # where unrenderable meshes go: nothing is drawn


class Pytorch3dRenderer:
    name = "pytorch3d"

    def __init__(self, sigma: float = 1.0, faces_per_pixel: int = 12):
        """sigma: width of the antialiasing band in pixels (DEODR's sigma); faces_per_pixel:
        the nearest faces kept per pixel. Where triangles are smaller than a pixel, the bands
        of up to 11 nearer faces can reach a pixel before the face that covers it (with 8,
        12 pinholes in the posed hand of tests/test_render.py; none with 12, at the same
        speed)."""
        self.sigma = sigma
        self.faces_per_pixel = faces_per_pixel

    def render(self, vertices: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor,
               K: torch.Tensor, height: int, width: int, light: Light) -> RenderOutput:
        """vertices (B, V, 3) camera frame, faces (F, 3), colors (B, V, 3) albedo,
        K (B, 3, 3) with pixel centres at integers (OpenCV)."""
        dtype, device = vertices.dtype, vertices.device
        ok = renderable(vertices, K, height, width)
        vertices = torch.where(ok[:, None, None], vertices.float(), _BEHIND.to(device))
        lit = shade(vertices, faces, colors.float(), light)
        fragments = self._rasterise(vertices, faces.to(device), K.float().to(device), height,
                                    width)
        px_per_ndc = min(height, width) / 2.0
        found = fragments.pix_to_face >= 0  # empty slots hold face -1 and distance -1
        inside = (fragments.dists < 0) & found
        distance_px = fragments.dists.clamp_min(1e-12).sqrt() * px_per_ndc
        alpha = torch.where(inside, torch.ones_like(distance_px),
                            (1.0 - distance_px / self.sigma).clamp(0.0, 1.0)) * found
        silhouette = alpha.amax(dim=-1)  # distance to the silhouette, not a union of bands
        seen = alpha * torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]),
                                                1.0 - alpha[..., :-1]], dim=-1), dim=-1)
        share = seen / seen.sum(-1, keepdim=True).clamp_min(1e-8)  # (B, H, W, K)
        colour = self._face_point_colours(fragments, lit, faces)
        image = (share[..., None] * colour).sum(-2) * silhouette[..., None]
        depth = torch.where(silhouette > 0, (share * fragments.zbuf).sum(-1),
                            torch.zeros_like(silhouette))
        return RenderOutput(image.to(dtype), silhouette.to(dtype), depth.to(dtype),
                            unrendered=~ok)

    def _rasterise(self, vertices, faces, K, height, width):
        batch, device = vertices.shape[0], vertices.device
        # cameras_from_opencv_projection maps the image to [0, W] x [0, H], pixel centres at
        # half-integers; handlabel's K (and DEODR) put them at integers: move by half a pixel.
        half_pixel = torch.zeros_like(K)
        half_pixel[:, :2, 2] = 0.5
        cameras = cameras_from_opencv_projection(
            R=torch.eye(3, device=device).expand(batch, 3, 3),
            tvec=torch.zeros(batch, 3, device=device), camera_matrix=K + half_pixel,
            image_size=torch.tensor([[height, width]], device=device).expand(batch, 2))
        band_ndc = self.sigma * 2.0 / min(height, width)
        settings = RasterizationSettings(
            image_size=(height, width), blur_radius=band_ndc**2,  # squared NDC distance
            faces_per_pixel=self.faces_per_pixel, cull_backfaces=True,
            clip_barycentric_coords=True)
        meshes = Meshes(verts=list(vertices), faces=[faces] * batch)
        return MeshRasterizer(cameras=cameras, raster_settings=settings)(meshes)

    @staticmethod
    def _face_point_colours(fragments, lit: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """(B, H, W, K, 3) colour at each fragment's (clipped) barycentric point."""
        face_colours = lit[:, faces].reshape(-1, 3, 3)  # packed faces, per corner
        return interpolate_face_attributes(fragments.pix_to_face, fragments.bary_coords,
                                           face_colours)
