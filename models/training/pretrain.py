"""Pretraining on synthetic hands with exact labels (seed 002: pre-learn hand priors, then
transfer without labels). The train stage starts from the result; see
``scripts/pretrain_synthetic.py`` for the shipped checkpoint.

The exact 2D joints stand in for the detections (confidence 1) and the exact 3D joints for
the teacher 3D, so the same S2HAND objective and trainer are used as on an archive; only the
photometric losses are off (the synthetic skin is not the archive's, and rendering would
triple the cost of a step on a CPU).
"""

from __future__ import annotations

import torch

from ..synthetic import SyntheticHands
from .batches import HandCrops

PRETRAIN_WEIGHTS = {
    "reprojection": 1e-3, "bone_direction": 0.1, "branch_2d": 1e-3, "consistency_2d3d": 2e-4,
    "scale": 0.1, "joint_angle": 0.1, "shape": 1e-2, "laplacian": 0.1, "teacher_3d": 1.0,
}


def synthetic_crops(generator: SyntheticHands, n: int, batch: int = 64) -> HandCrops:
    """``n`` synthetic hands as training crops: exact 2D (confidence 1), exact 3D teacher.

    Returns:
        HandCrops with images (n, S, S, 3) uint8, keypoints (n, 21, 2), K (n, 3, 3) and the
        teacher (n, 21, 3) in metres, camera frame.
    """
    if n < 2:
        raise ValueError(f"synthetic_crops: n={n}, need at least 2 hands")
    parts = [generator.sample(min(batch, n - i)) for i in range(0, n, batch)]
    images = torch.cat([(p.images * 255).round().to(torch.uint8) for p in parts])
    keypoints = torch.cat([p.joints_2d for p in parts]).float()
    teacher = torch.cat([p.joints_3d for p in parts]).float()
    ones = torch.ones(keypoints.shape[:2])
    return HandCrops(images, keypoints, ones, torch.ones(n), torch.cat([p.K for p in parts]),
                     teacher, ones.clone())
