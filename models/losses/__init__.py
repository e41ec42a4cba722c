"""Losses on tensors. ``mesh``: Laplacian, edge, normal consistency, Chamfer (hand-written:
no installable library provides them on CPU here; see its docstring)."""
