"""What accelerators this machine offers, for sizing a local Dask cluster's resources."""

from __future__ import annotations


def local_gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
