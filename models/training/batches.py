"""Training samples as tensors, and batches at the network's input size with augmentation
(in-plane rotation about the crop centre and colour jitter, through kornia).

Clips (S2HAND(V)): ``HandCrops.clips`` lists C clips of T consecutive frames of one track as
sample indices; a batch of clips is clip-major and every frame of a clip gets the same
augmentation, so that the clip losses see the hand's motion, not the augmentation's."""

from __future__ import annotations

from dataclasses import dataclass

import kornia
import torch
from torch.nn import functional as F

from ..camera import scale_intrinsics
from ..geometry import rotation_about
from ..losses.objective import Supervision


@dataclass
class HandCrops:
    """N hand crops with their weighted detections (all right hands: left ones mirrored)."""

    images: torch.Tensor  # (N, S, S, 3) uint8
    keypoints: torch.Tensor  # (N, 21, 2) crop pixels
    confidence: torch.Tensor  # (N, 21)
    sample_weight: torch.Tensor  # (N,)
    K: torch.Tensor  # (N, 3, 3)
    teacher: torch.Tensor | None = None  # (N, 21, 3) the detector's 3D, mirrored like the crop
    teacher_confidence: torch.Tensor | None = None  # (N, 21)
    times: torch.Tensor | None = None  # (N,) seconds of each sample's frame
    clips: torch.Tensor | None = None  # (C, T) sample indices of clips of one track
    clip_valid: torch.Tensor | None = None  # (C, T) False: a short track's padding
    # a calibrated rig's pairs: one hand at one instant in two cameras (sample indices a, b),
    # and x_b = R x_a + t between their crops' camera frames (mirrors included), metres
    pairs: torch.Tensor | None = None  # (P, 2)
    pair_R: torch.Tensor | None = None  # (P, 3, 3)
    pair_t: torch.Tensor | None = None  # (P, 3)
    # the job's own labels as targets (a round of fit and training; ``losses.objective``'s
    # ``labels_2d`` and ``labels_3d``): joints in the crop's camera, and each label's weight
    label_joints: torch.Tensor | None = None  # (N, 21, 3) metres
    label_weight: torch.Tensor | None = None  # (N,), 0: no label to learn from

    @property
    def clip_length(self) -> int:
        return 1 if self.clips is None else self.clips.shape[1]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def crop_size(self) -> int:
        return self.images.shape[1]


@dataclass(frozen=True)
class Augmentation:
    rotation_deg: float = 30.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.2 / 6  # a sixth of the other jitters, as the config sets it


def make_batch(data: HandCrops, indices: torch.Tensor, input_size: int, device: torch.device,
               augmentation: Augmentation | None = None,
               generator: torch.Generator | None = None, clip_length: int = 1,
               valid: torch.Tensor | None = None) -> Supervision:
    """The samples at ``indices`` resized to ``input_size`` (K and keypoints follow), augmented
    when ``augmentation`` is given (random numbers from ``generator``, for determinism; one
    draw per clip of ``clip_length`` consecutive indices). Samples where ``valid`` is False
    (a short clip's padding) get confidence 0."""
    images = data.images[indices].to(device).float().div(255).permute(0, 3, 1, 2)
    factor = input_size / data.crop_size
    K = scale_intrinsics(data.K[indices].to(device).float(), factor)
    keypoints = (data.keypoints[indices].to(device).float() + 0.5) * factor - 0.5
    if factor != 1:
        images = F.interpolate(images, size=input_size, mode="bilinear", antialias=True,
                               align_corners=False)
    if augmentation is not None:
        images, keypoints, K = _rotate(images, keypoints, K, augmentation, generator,
                                       clip_length)
        images = _jitter_colour(images, augmentation, generator, clip_length)
    real = (torch.ones(len(indices), dtype=torch.bool) if valid is None else valid).to(device)
    teacher = teacher_confidence = None
    if data.teacher is not None:  # rotation-invariant in the loss: augmentation leaves it
        teacher = data.teacher[indices].to(device).float()
        teacher_confidence = data.teacher_confidence[indices].to(device).float() * real[:, None]
    times = None if data.times is None else data.times[indices].to(device).double()
    labels = label_weight = None
    if data.label_joints is not None:  # projected through K, which the rotation moved
        labels = data.label_joints[indices].to(device).float()
        label_weight = data.label_weight[indices].to(device).float() * real
    return Supervision(images.permute(0, 2, 3, 1).contiguous(), keypoints,
                       data.confidence[indices].to(device).float() * real[:, None],
                       data.sample_weight[indices].to(device).float() * real, K, teacher,
                       teacher_confidence, clip_length, times, real, labels, label_weight)


def _uniform(n: int, half_range: float, generator, device, clip_length: int = 1
             ) -> torch.Tensor:
    """(n,) uniform in +-half_range, one draw per clip of ``clip_length`` samples."""
    draws = (torch.rand(n // clip_length, generator=generator) * 2 - 1) * half_range
    return draws.repeat_interleave(clip_length).to(device)


def _rotate(images, keypoints, K, augmentation: Augmentation, generator, clip_length: int):
    n, size = images.shape[0], images.shape[-1]
    angle = _uniform(n, torch.pi * augmentation.rotation_deg / 180, generator, images.device,
                     clip_length)
    centre = torch.full((n, 2), (size - 1) / 2, device=images.device)
    rotation = rotation_about(centre, angle)
    images = kornia.geometry.transform.warp_affine(images, rotation[:, :2], (size, size),
                                                   align_corners=True)
    keypoints = torch.einsum("bij,bnj->bni", rotation[:, :2, :2], keypoints) + rotation[:, None,
                                                                                         :2, 2]
    return images, keypoints, rotation @ K


def _jitter_colour(images: torch.Tensor, augmentation: Augmentation, generator,
                   clip_length: int) -> torch.Tensor:
    n, device = images.shape[0], images.device

    def draw(half_range: float) -> torch.Tensor:
        return _uniform(n, half_range, generator, device, clip_length)

    images = kornia.enhance.adjust_brightness(images, draw(augmentation.brightness))
    images = kornia.enhance.adjust_contrast(images, 1 + draw(augmentation.contrast))
    images = kornia.enhance.adjust_saturation(images, 1 + draw(augmentation.saturation))
    images = kornia.enhance.adjust_hue(images, draw(augmentation.hue * 2 * torch.pi))
    return images.clamp(0, 1)
