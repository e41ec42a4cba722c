"""Differentiable rendering of meshes: image, silhouette and depth through a pinhole K."""

from .base import Light, Renderer, RenderOutput, light_from_params, shade, vertex_normals

__all__ = ["Light", "RenderOutput", "Renderer", "light_from_params", "make_renderer",
           "renderer_name", "shade", "vertex_normals"]


def renderer_name(name: str = "auto", device_type: str = "cpu") -> str:
    """The backend ``name`` stands for on a ``device_type`` ('cpu', 'cuda'), without importing
    it. 'auto' is DEODR, except pytorch3d on CUDA where it is installed: its CPU rasteriser
    tests every face at every pixel (about 40x DEODR's time for a hand crop, bench/render.py).
    """
    import importlib.util

    if name == "auto":
        on_cuda = device_type == "cuda" and importlib.util.find_spec("pytorch3d") is not None
        return "pytorch3d" if on_cuda else "deodr"
    return name


def make_renderer(name: str = "auto", device_type: str = "cpu") -> Renderer:
    """'deodr', 'pytorch3d', or 'auto' (see :func:`renderer_name`)."""
    name = renderer_name(name, device_type)
    if name == "pytorch3d":
        from .pytorch3d_backend import Pytorch3dRenderer

        return Pytorch3dRenderer()
    if name == "deodr":
        from .deodr_backend import DeodrRenderer

        return DeodrRenderer()
    raise ValueError(f"unknown renderer {name!r}: choose auto, deodr or pytorch3d")
