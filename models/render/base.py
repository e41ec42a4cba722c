"""The renderer interface, and the shading every backend shares (computed in torch).

Meshes are in the camera frame (x right, y down, z forward, metres) with outward faces
counterclockwise (right-hand rule). Shading is Lambertian with METHOD.md's 11-number light:
ambient intensity, directional intensity, ambient RGB, directional RGB, direction xyz (the
direction the light travels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from ..geometry import project


@dataclass
class Light:
    ambient: torch.Tensor  # (B, 3) colour x intensity
    directional: torch.Tensor  # (B, 3) colour x intensity
    direction: torch.Tensor  # (B, 3) unit vector, the way the light travels

    @classmethod
    def ambient_only(cls, batch: int, intensity: float = 1.0, device=None) -> Light:
        zeros = torch.zeros(batch, 3, device=device)
        direction = torch.tensor([0.0, 0.0, 1.0], device=device).expand(batch, 3)
        return cls(torch.full((batch, 3), intensity, device=device), zeros, direction)


def light_from_params(params: torch.Tensor) -> Light:
    """(B, 11) network output -> Light (METHOD.md section 1 layout)."""
    ambient = params[:, 0:1] * params[:, 2:5]
    directional = params[:, 1:2] * params[:, 5:8]
    direction = torch.nn.functional.normalize(params[:, 8:11], dim=-1)
    return Light(ambient, directional, direction)


@dataclass
class RenderOutput:
    image: torch.Tensor  # (B, H, W, 3)
    silhouette: torch.Tensor  # (B, H, W) coverage in [0, 1]
    depth: torch.Tensor  # (B, H, W) camera z where covered, 0 elsewhere
    unrendered: torch.Tensor | None = None  # (B,) meshes the backend could not render (a
    # blank image, no gradient); None where a backend renders every mesh


# No backend clips: a mesh with a vertex at or behind the camera, non-finite, or projected far
# outside the image has no meaningful render. Every backend skips such a mesh (empty image, no
# gradient) and says so in ``RenderOutput.unrendered``, which training counts per epoch.
NEAR_PLANE_M = 0.01
MAX_PROJECTED_EXTENT = 20.0  # image sizes


def renderable(vertices: torch.Tensor, K: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B,) bool: the meshes a backend can render (see NEAR_PLANE_M); vertices (B, V, 3),
    K (B, 3, 3)."""
    vertices, K = vertices.detach().double(), K.detach().double().to(vertices.device)
    finite = torch.isfinite(vertices).flatten(1).all(1)
    safe = torch.where(finite[:, None, None], vertices, torch.ones_like(vertices))
    in_front = safe[..., 2].amin(1) > NEAR_PLANE_M
    uv = project(safe, K)
    inside = uv.abs().flatten(1).amax(1) < MAX_PROJECTED_EXTENT * max(height, width)
    return finite & in_front & inside


class Renderer(Protocol):
    name: str

    def render(self, vertices: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor,
               K: torch.Tensor, height: int, width: int, light: Light) -> RenderOutput:
        """vertices (B, V, 3), faces (F, 3) long, colors (B, V, 3) albedo, K (B, 3, 3)."""
        ...


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) area-weighted outward unit normals."""
    corners = vertices[:, faces]  # (B, F, 3, 3)
    face_normals = torch.linalg.cross(corners[:, :, 1] - corners[:, :, 0],
                                      corners[:, :, 2] - corners[:, :, 0], dim=-1)
    normals = torch.zeros_like(vertices)
    for corner in range(3):
        normals = normals.index_add(1, faces[:, corner], face_normals)
    return torch.nn.functional.normalize(normals, dim=-1)


def shade(vertices: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor, light: Light
          ) -> torch.Tensor:
    """(B, V, 3) lit colours: albedo x (ambient + directional x max(0, n . -direction))."""
    normals = vertex_normals(vertices, faces)
    lambert = torch.relu(-(normals * light.direction[:, None]).sum(-1, keepdim=True))
    return colors * (light.ambient[:, None] + light.directional[:, None] * lambert)
