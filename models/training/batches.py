"""Training samples as tensors, and batches at the network's input size with augmentation
(in-plane rotation about the crop centre and colour jitter, through kornia)."""

from __future__ import annotations

from dataclasses import dataclass

import kornia
import torch
from torch.nn import functional as F

from ..geometry import rotation_about
from ..losses.objective import Supervision, rescale_projection


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
    hue: float = 0.03


def make_batch(data: HandCrops, indices: torch.Tensor, input_size: int, device: torch.device,
               augmentation: Augmentation | None = None,
               generator: torch.Generator | None = None) -> Supervision:
    """The samples at ``indices`` resized to ``input_size`` (K and keypoints follow), augmented
    when ``augmentation`` is given (random numbers from ``generator``, for determinism)."""
    images = data.images[indices].to(device).float().div(255).permute(0, 3, 1, 2)
    factor = input_size / data.crop_size
    K = rescale_projection(data.K[indices].to(device).float(), factor)
    keypoints = (data.keypoints[indices].to(device).float() + 0.5) * factor - 0.5
    if factor != 1:
        images = F.interpolate(images, size=input_size, mode="bilinear", antialias=True,
                               align_corners=False)
    if augmentation is not None:
        images, keypoints, K = _rotate(images, keypoints, K, augmentation, generator)
        images = _jitter_colour(images, augmentation, generator)
    teacher = teacher_confidence = None
    if data.teacher is not None:  # rotation-invariant in the loss: augmentation leaves it
        teacher = data.teacher[indices].to(device).float()
        teacher_confidence = data.teacher_confidence[indices].to(device).float()
    return Supervision(images.permute(0, 2, 3, 1).contiguous(), keypoints,
                       data.confidence[indices].to(device).float(),
                       data.sample_weight[indices].to(device).float(), K, teacher,
                       teacher_confidence)


def _uniform(n: int, half_range: float, generator, device) -> torch.Tensor:
    return ((torch.rand(n, generator=generator) * 2 - 1) * half_range).to(device)


def _rotate(images, keypoints, K, augmentation: Augmentation, generator):
    n, size = images.shape[0], images.shape[-1]
    angle = _uniform(n, torch.pi * augmentation.rotation_deg / 180, generator, images.device)
    centre = torch.full((n, 2), (size - 1) / 2, device=images.device)
    rotation = rotation_about(centre, angle)
    images = kornia.geometry.transform.warp_affine(images, rotation[:, :2], (size, size),
                                                   align_corners=True)
    keypoints = torch.einsum("bij,bnj->bni", rotation[:, :2, :2], keypoints) + rotation[:, None,
                                                                                         :2, 2]
    return images, keypoints, rotation @ K


def _jitter_colour(images: torch.Tensor, augmentation: Augmentation, generator) -> torch.Tensor:
    n, device = images.shape[0], images.device
    images = kornia.enhance.adjust_brightness(
        images, _uniform(n, augmentation.brightness, generator, device))
    images = kornia.enhance.adjust_contrast(
        images, 1 + _uniform(n, augmentation.contrast, generator, device))
    images = kornia.enhance.adjust_saturation(
        images, 1 + _uniform(n, augmentation.saturation, generator, device))
    images = kornia.enhance.adjust_hue(
        images, _uniform(n, augmentation.hue * 2 * torch.pi, generator, device))
    return images.clamp(0, 1)
