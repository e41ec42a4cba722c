"""The trainable 2D keypoint branch: an hourglass over the low-level features, 21 heatmaps
(64x64 by default) and a differentiable soft-argmax to crop pixels."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _conv(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))


class Hourglass(nn.Module):
    """Recursive encoder-decoder with a skip connection at every resolution."""

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.skip = _conv(channels, channels)
        self.down = _conv(channels, channels)
        self.inner = Hourglass(depth - 1, channels) if depth > 1 else _conv(channels, channels)
        self.up = _conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = self.inner(self.down(F.max_pool2d(x, 2)))
        return self.skip(x) + F.interpolate(self.up(inner), size=x.shape[-2:], mode="nearest")


def soft_argmax(heatmaps: torch.Tensor, image_size: int) -> torch.Tensor:
    """(B, J, H, W) logits -> (B, J, 2) expected positions in image pixels (centres at
    integers, the image spanning [-0.5, size - 0.5])."""
    batch, joints, height, width = heatmaps.shape
    probability = heatmaps.flatten(2).float().softmax(-1).view(batch, joints, height, width)
    xs = (torch.arange(width, device=heatmaps.device) + 0.5) * image_size / width - 0.5
    ys = (torch.arange(height, device=heatmaps.device) + 0.5) * image_size / height - 0.5
    x = (probability.sum(2) * xs).sum(-1)
    y = (probability.sum(3) * ys).sum(-1)
    return torch.stack([x, y], -1)


class KeypointBranch(nn.Module):
    def __init__(self, inputs: int, joints: int = 21, channels: int = 64, heatmap_size: int = 64,
                 stacks: int = 1, depth: int = 3):
        super().__init__()
        self.heatmap_size = heatmap_size
        self.stem = _conv(inputs, channels)
        self.stacks = nn.ModuleList(Hourglass(depth, channels) for _ in range(stacks))
        self.to_heatmaps = nn.ModuleList(nn.Conv2d(channels, joints, 1) for _ in range(stacks))
        self.from_heatmaps = nn.ModuleList(nn.Conv2d(joints, channels, 1)
                                           for _ in range(stacks - 1))

    def forward(self, low_level: torch.Tensor, image_size: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the last stack's heatmaps (B, J, h, h) and keypoints (B, J, 2) in pixels."""
        x = F.interpolate(low_level, size=self.heatmap_size, mode="bilinear", align_corners=False)
        x = self.stem(x)
        for index, hourglass in enumerate(self.stacks):
            x = hourglass(x)
            heatmaps = self.to_heatmaps[index](x)
            if index < len(self.from_heatmaps):
                x = x + self.from_heatmaps[index](heatmaps)
        return heatmaps, soft_argmax(heatmaps, image_size)
