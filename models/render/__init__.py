"""Differentiable rendering of meshes: image, silhouette and depth through a pinhole K."""

from .base import Light, Renderer, RenderOutput, light_from_params, shade, vertex_normals

__all__ = ["Light", "RenderOutput", "Renderer", "light_from_params", "shade", "vertex_normals"]
