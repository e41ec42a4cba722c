"""The S2HAND model-based autoencoder (METHOD.md section 1): a crop and its K in, a posed,
textured, lit hand mesh in the crop's camera frame out.

mesh = anchor + |scale| * (HandModel(rot, pose, beta) - its anchor joint), where the anchor is
the middle finger's MCP joint placed by the translation head (see ``heads``). Output joints are
in METHOD.md's file order, in metres; left hands arrive mirrored and leave as right hands.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from ..geometry import backproject, focal_length, project
from ..hand.base import HandModel
from .encoder import ResNetEncoder
from .heads import CROP_FILL, HAND_EXTENT_M, AppearanceHead, HandRegressor
from .keypoint_branch import KeypointBranch

ANCHOR_JOINT = 9  # middle MCP: near the centre of the hand
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class NetworkSpec:
    """What decides the network's shape (stored with every checkpoint)."""

    encoder_width: int = 64
    encoder_blocks: tuple[int, ...] = (2, 2, 2, 2)
    head_hidden: int = 512
    branch_channels: int = 64
    branch_stacks: int = 1
    heatmap_size: int = 64


@dataclass
class S2HandPrediction:
    global_orient: torch.Tensor  # (B, 3) axis-angle
    hand_pose: torch.Tensor  # (B, 15, 3) axis-angle
    betas: torch.Tensor  # (B, S)
    scale: torch.Tensor  # (B,)
    translation: torch.Tensor  # (B, 3) camera-frame anchor position, metres
    vertices: torch.Tensor  # (B, V, 3) camera frame, metres
    joints_3d: torch.Tensor  # (B, 21, 3) camera frame, metres
    joints_2d: torch.Tensor  # (B, 21, 2) projected, input pixels
    albedo: torch.Tensor  # (B, V, 3)
    light: torch.Tensor  # (B, 11)
    branch_2d: torch.Tensor  # (B, 21, 2) the 2D branch's keypoints, input pixels
    heatmaps: torch.Tensor  # (B, 21, h, h)

    def detach(self) -> S2HandPrediction:
        return S2HandPrediction(**{f.name: getattr(self, f.name).detach() for f in fields(self)})


class S2HandNet(nn.Module):
    def __init__(self, hand_model: HandModel, spec: NetworkSpec | None = None):
        super().__init__()
        self.spec = spec or NetworkSpec()
        self.hand_model = hand_model.requires_grad_(False)
        self.encoder = ResNetEncoder(self.spec.encoder_width, self.spec.encoder_blocks)
        self.regressor = HandRegressor(self.encoder.feature_size, hand_model.n_shape,
                                       self.spec.head_hidden)
        n_vertices = hand_model(torch.zeros(1, 3), torch.zeros(1, 15, 3),
                                torch.zeros(1, hand_model.n_shape)).vertices.shape[1]
        self.appearance = AppearanceHead(self.encoder.low_level_size, n_vertices)
        self.branch = KeypointBranch(self.encoder.low_level_size,
                                     channels=self.spec.branch_channels,
                                     heatmap_size=self.spec.heatmap_size,
                                     stacks=self.spec.branch_stacks)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, S, S, 3) in [0, 1] -> pooled and low-level features.

        The channels-first copy is made contiguous: torch 2.13's CPU convolution backward on
        the permuted (channels-last strided) input corrupted the heap with one thread at
        encoder width 4 ('free(): invalid next size', 'corrupted size vs. prev_size'; 9 of 9
        runs of a 10-step loop, 0 of 9 with a contiguous input)."""
        channels_first = images.permute(0, 3, 1, 2).contiguous()
        return self.encoder((channels_first - self.mean) / self.std)

    def forward(self, images: torch.Tensor, K: torch.Tensor, amp: bool = False
                ) -> S2HandPrediction:
        """images (B, S, S, 3) in [0, 1], K (B, 3, 3) of those images. ``amp`` runs the
        convolutional parts in float16 autocast on CUDA; the geometry stays float32."""
        size = images.shape[1]
        with torch.autocast(images.device.type, enabled=amp and images.is_cuda):
            pooled, low = self.features(images)
            heatmaps, branch_2d = self.branch(low, size)
            albedo, light = self.appearance(low)
            params = self.regressor(pooled)
        params = {k: v.float() for k, v in params.items()}
        anchor = self._anchor(params["translation"], K, size)
        vertices, joints = place_hand(self.hand_model, params["global_orient"],
                                      params["hand_pose"], params["betas"], anchor,
                                      params["scale"])
        return S2HandPrediction(
            global_orient=params["global_orient"], hand_pose=params["hand_pose"],
            betas=params["betas"], scale=params["scale"], translation=anchor,
            vertices=vertices, joints_3d=joints, joints_2d=project(joints, K),
            albedo=albedo.float(), light=light.float(), branch_2d=branch_2d.float(),
            heatmaps=heatmaps.float())

    @staticmethod
    def _anchor(code: torch.Tensor, K: torch.Tensor, size: int) -> torch.Tensor:
        """Translation code (du, dv in crop sides; log depth factor) -> anchor in metres."""
        centre = torch.full_like(code[:, :2], (size - 1) / 2)
        pixels = centre + code[:, :2] * size
        depth = focal_length(K) * HAND_EXTENT_M / (CROP_FILL * size) * torch.exp(code[:, 2])
        return backproject(pixels, depth, K)


def place_hand(hand_model: HandModel, global_orient: torch.Tensor, hand_pose: torch.Tensor,
               betas: torch.Tensor, anchor: torch.Tensor, scale: torch.Tensor,
               joint_offsets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices and joints in the camera frame: anchor + |scale| * (hand - its anchor joint)."""
    hand = hand_model(global_orient, hand_pose, betas, joint_offsets)
    origin = hand.joints[:, ANCHOR_JOINT : ANCHOR_JOINT + 1]
    scale = scale[:, None, None]
    return (anchor[:, None] + scale * (hand.vertices - origin),
            anchor[:, None] + scale * (hand.joints - origin))


def load_encoder_weights(net: S2HandNet, state: dict[str, torch.Tensor]) -> list[str]:
    """Load a torchvision-named ResNet state dict (for example ImageNet weights a user has)
    into the encoder; returns the encoder keys that were not in it. Shapes must match."""
    encoder_state = {k.removeprefix("encoder."): v for k, v in state.items()
                     if not k.startswith("fc.")}
    result = net.encoder.load_state_dict(encoder_state, strict=False)
    return list(result.missing_keys)
