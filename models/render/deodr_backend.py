"""DEODR backend (BSD, PyPI wheels): antialiased, with gradients from silhouette edges.

DEODR renders one mesh at a time in float64 on the CPU. Its colour channels are arbitrary,
so one pass renders [lit RGB, 1, z]: the image, the coverage (silhouette) and the depth. The
shading is done beforehand in torch (``shade``), and DEODR's own lighting is left neutral.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from deodr.pytorch import CameraPytorch, ColoredTriMeshPytorch, Scene3DPytorch

from .base import Light, RenderOutput, shade

# DEODR 0.2.3 calls torch APIs that torch now marks deprecated; the results are unaffected.
warnings.filterwarnings("ignore", category=UserWarning, module=r"deodr\.")

_IDENTITY_EXTRINSIC = np.hstack([np.eye(3), np.zeros((3, 1))])


class DeodrRenderer:
    name = "deodr"

    def __init__(self, sigma: float = 1.0):
        self.sigma = sigma
        self._meshes: dict[bytes, ColoredTriMeshPytorch] = {}  # adjacency is costly: per topology

    def _mesh(self, faces: torch.Tensor, vertices: torch.Tensor, channels: torch.Tensor):
        key = faces.cpu().numpy().tobytes()
        mesh = self._meshes.get(key)
        if mesh is None:
            mesh = ColoredTriMeshPytorch(faces.cpu().numpy(), vertices=vertices, colors=channels)
            self._meshes[key] = mesh
        else:
            mesh.set_vertices(vertices)
            mesh.set_vertices_colors(channels)
        return mesh

    def _render_one(self, vertices, faces, lit, K, height, width) -> torch.Tensor:
        vertices = vertices.double().cpu()
        channels = torch.cat([lit.double().cpu(), torch.ones_like(vertices[:, :1]),
                              vertices[:, 2:3]], dim=1)
        scene = Scene3DPytorch()
        scene.sigma = self.sigma
        scene.set_mesh(self._mesh(faces, vertices, channels))
        scene.set_light(torch.zeros(3, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
        scene.set_background_color(np.zeros(5))
        camera = CameraPytorch(_IDENTITY_EXTRINSIC, K.detach().double().cpu().numpy(), height,
                               width)
        return RenderGradFix.apply(scene.render(camera))

    def render(self, vertices: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor,
               K: torch.Tensor, height: int, width: int, light: Light) -> RenderOutput:
        lit = shade(vertices, faces, colors, light)
        images = torch.stack([self._render_one(vertices[b], faces, lit[b], K[b], height, width)
                              for b in range(vertices.shape[0])]).to(vertices)
        coverage = images[..., 3]
        depth = torch.where(coverage > 1e-6, images[..., 4] / coverage.clamp_min(1e-6),
                            torch.zeros_like(coverage))
        return RenderOutput(images[..., :3], coverage, depth)


class RenderGradFix(torch.autograd.Function):
    """Identity whose backward hands DEODR a contiguous float64 gradient (it requires one)."""

    @staticmethod
    def forward(ctx, image: torch.Tensor) -> torch.Tensor:
        return image.view_as(image)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.double().contiguous()
