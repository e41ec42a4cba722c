"""Photometric loss of METHOD.md: rendered vs input RGB inside the rendered silhouette, L1 plus
(1 - SSIM) from kornia, weighted per sample (the confidence gate of the weight stage)."""

from __future__ import annotations

import kornia
import torch


def photometric_loss(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     sample_weight: torch.Tensor, window: int = 11) -> torch.Tensor:
    """rendered, target (B, H, W, 3) in [0, 1]; mask (B, H, W) in [0, 1]; sample_weight (B,).

    Per sample: mean over the mask of |rendered - target| + (1 - SSIM), then the weighted
    mean over samples (a sample of weight 0 contributes nothing).
    """
    rendered_chw, target_chw = rendered.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2)
    ssim = kornia.metrics.ssim(rendered_chw, target_chw, window).mean(1)  # (B, H, W)
    per_pixel = (rendered - target).abs().mean(-1) + (1.0 - ssim)
    area = mask.sum(dim=(1, 2)).clamp_min(1.0)
    per_sample = (per_pixel * mask).sum(dim=(1, 2)) / area
    return (per_sample * sample_weight).sum() / sample_weight.sum().clamp_min(1e-8)
