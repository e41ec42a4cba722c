"""DEODR backend (BSD, PyPI wheels): antialiased, with gradients from silhouette edges.

DEODR renders one mesh at a time in float64 on the CPU. Its colour channels are arbitrary,
so one pass renders [lit RGB, 1, z]: the image, the coverage (silhouette) and the depth. The
shading is done beforehand in torch (``shade``), and DEODR's own lighting is left neutral.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import torch
from deodr.pytorch import CameraPytorch, ColoredTriMeshPytorch, Scene3DPytorch
from deodr.pytorch.triangulated_mesh_pytorch import TriMeshAdjacenciesPytorch

from .base import Light, RenderOutput, renderable, shade

# DEODR 0.2.3 calls torch APIs that torch now marks deprecated; the results are unaffected.
warnings.filterwarnings("ignore", category=UserWarning, module=r"deodr\.")

_IDENTITY_EXTRINSIC = np.hstack([np.eye(3), np.zeros((3, 1))])


class _UnlitScene(Scene3DPytorch):
    """A DEODR scene that takes the vertex colours as they are: shading is done in torch
    beforehand (``shade``), so DEODR's own lighting would only compute normals again."""

    def _compute_vertices_colors_with_illumination(self) -> torch.Tensor:
        return self.mesh.vertices_colors


@lru_cache(maxsize=8)
def _adjacencies(faces: bytes, count: int) -> TriMeshAdjacenciesPytorch:
    return TriMeshAdjacenciesPytorch(np.frombuffer(faces, dtype=np.int64).reshape(count, 3))


class _Mesh(ColoredTriMeshPytorch):
    """A DEODR mesh whose adjacencies come from a cache: they depend on the faces alone, hold
    nothing of a render, and building them was most of a new mesh's 5 ms."""

    def compute_adjacencies(self) -> None:
        faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        self._adjacencies = _adjacencies(faces.tobytes(), len(faces))


class DeodrRenderer:
    name = "deodr"

    def __init__(self, sigma: float = 1.0):
        self.sigma = sigma

    @staticmethod
    def _mesh(faces: torch.Tensor, vertices: torch.Tensor, channels: torch.Tensor):
        """A new DEODR mesh per item and call (its vertices and colours are not shared
        between renders whose backward passes are still to come; its topology is)."""
        return _Mesh(faces.cpu().numpy(), vertices=vertices, colors=channels)

    def _render_one(self, vertices, faces, lit, K, height, width) -> torch.Tensor:
        vertices = vertices.double().cpu()
        channels = torch.cat([lit.double().cpu(), torch.ones_like(vertices[:, :1]),
                              vertices[:, 2:3]], dim=1)
        scene = _UnlitScene()
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
        ok = renderable(vertices, K, height, width).tolist()
        blank = torch.zeros(height, width, 5, dtype=torch.float64)
        images = torch.stack([
            self._render_one(vertices[b], faces, lit[b], K[b], height, width) if drawn else blank
            for b, drawn in enumerate(ok)]).to(vertices)
        coverage = images[..., 3]
        depth = torch.where(coverage > 1e-6, images[..., 4] / coverage.clamp_min(1e-6),
                            torch.zeros_like(coverage))
        unrendered = ~torch.tensor(ok, dtype=torch.bool, device=vertices.device)
        return RenderOutput(images[..., :3], coverage, depth, unrendered)


class RenderGradFix(torch.autograd.Function):
    """Identity whose backward hands DEODR a contiguous float64 gradient (it requires one)."""

    @staticmethod
    def forward(ctx, image: torch.Tensor) -> torch.Tensor:
        return image.view_as(image)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # a buffer of its own: the incoming gradient can be a view into the whole batch's
        return grad.to(torch.float64, memory_format=torch.contiguous_format, copy=True)
