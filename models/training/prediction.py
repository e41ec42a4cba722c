"""Running a trained network on crops of any size: resize to the input size, predict, and
give the results back in the crop's pixels."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..camera import scale_intrinsics
from ..network import S2HandNet, S2HandPrediction


@torch.no_grad()
def predict_crops(net: S2HandNet, images: torch.Tensor, K: torch.Tensor, input_size: int,
                  batch_size: int = 64, device: str | torch.device = "cpu"
                  ) -> S2HandPrediction:
    """images (N, S, S, 3) uint8 or float in [0, 1], K (N, 3, 3) of the crops. Returned 2D
    keypoints (projected and branch) are in crop pixels; 3D is in the crop's camera frame."""
    net.eval().to(device)
    parts = []
    for start in range(0, images.shape[0], batch_size):
        chunk = images[start : start + batch_size].to(device)
        chunk = chunk.float() / 255 if chunk.dtype == torch.uint8 else chunk.float()
        size = chunk.shape[1]
        factor = input_size / size
        resized = F.interpolate(chunk.permute(0, 3, 1, 2), size=input_size, mode="bilinear",
                                antialias=True, align_corners=False).permute(0, 2, 3, 1)
        k = scale_intrinsics(K[start : start + batch_size].to(device).float(), factor)
        out = net(resized, k).detach()
        out.joints_2d = (out.joints_2d + 0.5) / factor - 0.5
        out.branch_2d = (out.branch_2d + 0.5) / factor - 0.5
        parts.append(out)
    return S2HandPrediction(**{name: torch.cat([getattr(p, name).cpu() for p in parts])
                               for name in S2HandPrediction.__dataclass_fields__})
