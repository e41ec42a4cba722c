"""Differentiable rendering of meshes: image, silhouette and depth through a pinhole K."""

from .base import Light, Renderer, RenderOutput, light_from_params, shade, vertex_normals

__all__ = ["Light", "RenderOutput", "Renderer", "light_from_params", "make_renderer", "shade",
           "vertex_normals"]


def make_renderer(name: str = "auto") -> Renderer:
    """'deodr', 'pytorch3d', or 'auto': pytorch3d where it imports, else DEODR."""
    import importlib.util

    if name == "auto":
        name = "pytorch3d" if importlib.util.find_spec("pytorch3d") else "deodr"
    if name == "pytorch3d":
        from .pytorch3d_backend import Pytorch3dRenderer

        return Pytorch3dRenderer()
    if name == "deodr":
        from .deodr_backend import DeodrRenderer

        return DeodrRenderer()
    raise ValueError(f"unknown renderer {name!r}: choose auto, deodr or pytorch3d")
