"""A ResNet image encoder written in plain torch, with torchvision's parameter names.

No pretrained weights can be downloaded where handlabel runs, so the encoder trains from
scratch by default. Because the names (``conv1``, ``layer1.0.bn2``, ...) match torchvision's
ResNet, a user's own ``resnet18``/``resnet34`` ImageNet state dict loads into it
(``width=64``); smaller widths trade accuracy for CPU speed.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False),
                                            nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNetEncoder(nn.Module):
    """Returns the pooled feature ``(B, 8w)`` and the stride-4 features ``(B, w, S/4, S/4)``
    (56x56 for 224 px input), the low-level map the texture head and 2D branch read."""

    def __init__(self, width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = width
        for index, count in enumerate(blocks):
            outputs = width * 2**index
            stride = 1 if index == 0 else 2
            layers = [BasicBlock(channels, outputs, stride)]
            layers += [BasicBlock(outputs, outputs, 1) for _ in range(count - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*layers))
            channels = outputs
        self.n_blocks = len(blocks)
        self.feature_size = channels
        self.low_level_size = width

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        low = self.layer1(x)
        x = low
        for index in range(2, self.n_blocks + 1):
            x = getattr(self, f"layer{index}")(x)
        return x.mean(dim=(2, 3)), low
