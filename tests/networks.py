"""A tiny S2HAND network for tests that need real predictions, not accuracy."""

from __future__ import annotations

import torch

from handlabel.models.hand.base import HandModel
from handlabel.models.network import NetworkSpec, S2HandNet

CROP_K = torch.tensor([[80.0, 0, 31.5], [0, 80.0, 31.5], [0, 0, 1]])  # a 64 px crop's camera


def tiny_network(hand: HandModel, seed: int = 0) -> S2HandNet:
    torch.manual_seed(seed)
    return S2HandNet(hand, NetworkSpec(encoder_width=4, head_hidden=16, branch_channels=8,
                                       heatmap_size=16))
