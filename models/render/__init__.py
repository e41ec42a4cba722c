"""Differentiable rendering of meshes: image, silhouette and depth through a pinhole K."""

from .base import Light, Renderer, RenderOutput, light_from_params, shade, vertex_normals

__all__ = ["Light", "RenderOutput", "Renderer", "light_from_params", "make_renderer",
           "renderer_name", "shade", "vertex_normals"]


def renderer_name(name: str = "auto") -> str:
    """The backend ``name`` stands for, without importing it. 'auto' is DEODR: pytorch3d is
    used only when asked for. It agrees with DEODR on CPU (tests/test_render.py), but has not
    yet been checked on CUDA (bench/gpu.sh), and on a CPU its rasteriser is 37-210x slower."""
    return "deodr" if name == "auto" else name


def make_renderer(name: str = "auto") -> Renderer:
    """'deodr', 'pytorch3d', or 'auto' (see :func:`renderer_name`)."""
    name = renderer_name(name)
    if name == "pytorch3d":
        from .pytorch3d_backend import Pytorch3dRenderer

        return Pytorch3dRenderer()
    if name == "deodr":
        from .deodr_backend import DeodrRenderer

        return DeodrRenderer()
    raise ValueError(f"unknown renderer {name!r}: choose auto, deodr or pytorch3d")
