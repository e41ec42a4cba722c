"""Parametric hand models behind one interface (``HandModel``): MANO (user-supplied file) and,
to come, an embedded openly licensed default."""

from .base import HandModel, HandOutput, mirror

__all__ = ["HandModel", "HandOutput", "mirror"]
