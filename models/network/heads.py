"""Heads of the S2HAND network: hand-model parameters and camera from the pooled feature,
texture and light from the low-level features.

Translation is predicted relative to the crop (a pixel offset of the anchor joint from the
crop centre and a log depth factor), and turned into metres with the crop's K. A direct
regression of metres, as in the public code, cannot know the crop's focal length, which here
varies with the hand's size in the frame.
"""

from __future__ import annotations

import roma
import torch
from torch import nn

LIGHT_SIZE = 11
# A hand filling CROP_FILL of the crop side is HAND_EXTENT_M across: the depth at factor 1.
HAND_EXTENT_M = 0.18
CROP_FILL = 1 / 1.6


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    head = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, outputs))
    nn.init.zeros_(head[-1].weight)  # start at the bias: a rest hand, centred, at depth 1
    nn.init.zeros_(head[-1].bias)
    return head


class HandRegressor(nn.Module):
    """Pooled feature -> pose (15x3 axis-angle), shape, global rotation, translation code
    (du, dv, log depth factor) and scale (|1 + s|).

    The global rotation is regressed in the continuous 6D form (two matrix columns,
    orthonormalised; Zhou et al. 2019) and returned as axis-angle: axis-angle regression is
    discontinuous over the full sphere of hand orientations and learns far slower.
    """

    def __init__(self, feature_size: int, n_shape: int, hidden: int = 512):
        super().__init__()
        self.sizes = {"hand_pose": 45, "betas": n_shape, "rotation_6d": 6, "translation": 3,
                      "scale": 1}
        self.mlp = _mlp(feature_size, hidden, sum(self.sizes.values()))
        identity_6d = torch.eye(3)[:, :2].reshape(-1)
        with torch.no_grad():
            self.mlp[-1].bias[45 + n_shape : 51 + n_shape] = identity_6d

    def forward(self, feature: torch.Tensor) -> dict[str, torch.Tensor]:
        values = dict(zip(self.sizes, self.mlp(feature).split(list(self.sizes.values()), -1),
                          strict=True))
        values["hand_pose"] = values["hand_pose"].view(-1, 15, 3)
        rotation = roma.special_gramschmidt(values.pop("rotation_6d").float().view(-1, 3, 2))
        values["global_orient"] = roma.rotmat_to_rotvec(rotation)
        values["scale"] = (1.0 + values["scale"][:, 0]).abs()
        return values


class AppearanceHead(nn.Module):
    """Low-level features -> per-vertex albedo (B, V, 3) in [0, 1] and the 11-number light."""

    def __init__(self, inputs: int, n_vertices: int, channels: int = 64, hidden: int = 256):
        super().__init__()
        layers, size = [], inputs
        for _ in range(3):
            layers += [nn.Conv2d(size, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(inplace=True)]
            size = channels
        self.convolutions = nn.Sequential(*layers)
        self.n_vertices = n_vertices
        self.mlp = _mlp(channels, hidden, n_vertices * 3 + LIGHT_SIZE)
        skin = torch.tensor([0.75, 0.55, 0.45]).logit()
        light = torch.tensor([0.6, 0.4, 3, 3, 3, 3, 3, 3, 0, 0, 1]).float()
        light[:2] = light[:2].logit()
        with torch.no_grad():
            self.mlp[-1].bias.copy_(torch.cat([skin.repeat(n_vertices), light]))

    def forward(self, low_level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.mlp(self.convolutions(low_level).mean(dim=(2, 3)))
        albedo = raw[:, : self.n_vertices * 3].sigmoid().view(-1, self.n_vertices, 3)
        light = raw[:, self.n_vertices * 3 :]
        light = torch.cat([light[:, :8].sigmoid(), light[:, 8:]], -1)  # direction stays free
        return albedo, light
