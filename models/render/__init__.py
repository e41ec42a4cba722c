"""Differentiable rendering of meshes: image, silhouette and depth through a pinhole K."""

from .base import Light, Renderer, RenderOutput, light_from_params, shade, vertex_normals

__all__ = ["Light", "RenderOutput", "Renderer", "light_from_params", "make_renderer",
           "renderer_name", "shade", "vertex_normals"]


def renderer_name(name: str = "auto") -> str:
    """The backend ``name`` stands for ('auto': pytorch3d where it is installed, else DEODR),
    without importing it."""
    import importlib.util

    if name == "auto":
        return "pytorch3d" if importlib.util.find_spec("pytorch3d") else "deodr"
    return name


def make_renderer(name: str = "auto") -> Renderer:
    """'deodr', 'pytorch3d', or 'auto': pytorch3d where it imports, else DEODR."""
    name = renderer_name(name)
    if name == "pytorch3d":
        from .pytorch3d_backend import Pytorch3dRenderer

        return Pytorch3dRenderer()
    if name == "deodr":
        from .deodr_backend import DeodrRenderer

        return DeodrRenderer()
    raise ValueError(f"unknown renderer {name!r}: choose auto, deodr or pytorch3d")
