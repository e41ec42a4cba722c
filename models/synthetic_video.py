"""Rendered synthetic hand sequences with known motion, as the train stage's clips would see
them, for measuring clip training (S2HAND(V)) against single-frame training.

Each sequence: a hand moving smoothly (``synthetic_motion.hand_motion``: joint angles inside
the limits, turning, travelling), one shape, skin and light for the whole sequence, rendered
into crops framed as the pipeline frames detections (``SyntheticHands.crop_intrinsics``,
with the detector's box jitter per frame) over one background crop (held still: the
background does not follow the crop's motion, a simplification). The supervision is what
a detector would give: the measured 2D error profile replayed with persistence
(``DetectionNoise``), a simulated 3D teacher, and dropouts, which leave gaps in the track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .detection_noise import DetectionNoise
from .geometry import project
from .synthetic import SyntheticHands
from .synthetic_motion import hand_motion, posed, simulated_detections, simulated_teacher
from .training.batches import HandCrops
from .training.clips import clip_windows


@dataclass
class SyntheticClips:
    """N frames of several synthetic tracks, the detected ones as training crops."""

    crops: HandCrops  # every frame (detections NaN-free: dropped frames have confidence 0)
    truth: torch.Tensor  # (N, 21, 3) true joints, crop camera frame, metres
    track: np.ndarray  # (N,) sequence number
    frame: np.ndarray  # (N,) frame number within its sequence
    detected: np.ndarray  # (N,) bool: the simulated detector found the hand

    def training_set(self, clip_length: int, stride: int = 1) -> HandCrops:
        """The detected frames, as single samples (``clip_length`` 1) or as clips that never
        span a dropout."""
        keep = np.flatnonzero(self.detected)
        c = self.crops
        crops = HandCrops(c.images[keep], c.keypoints[keep], c.confidence[keep],
                          c.sample_weight[keep], c.K[keep], c.teacher[keep],
                          c.teacher_confidence[keep], c.times[keep])
        if clip_length > 1:
            windows, valid = clip_windows(self.track[keep], self.frame[keep], clip_length,
                                          stride)
            crops.clips, crops.clip_valid = torch.from_numpy(windows), torch.from_numpy(valid)
        return crops


def synthetic_clips(generator: SyntheticHands, noise: DetectionNoise, sequences: int,
                    frames: int, seed: int, fps: float = 30.0, dropout: float = 0.05
                    ) -> SyntheticClips:
    """``sequences`` rendered tracks of ``frames`` frames each (generator's size and framing;
    it must have ``crop_margin``)."""
    rng = np.random.default_rng(seed)
    parts = [_sequence(generator, noise, frames, rng, fps, dropout) for _ in range(sequences)]
    fields = list(zip(*parts, strict=True))
    crops = HandCrops(*(torch.cat(f) for f in fields[:8]))
    return SyntheticClips(crops, torch.cat(fields[8]), np.repeat(np.arange(sequences), frames),
                          np.tile(np.arange(frames), sequences),
                          np.concatenate(fields[9]))


def _sequence(generator, noise, frames, rng, fps, dropout):
    vertices, joints = posed(generator.model, hand_motion(generator.model, frames, rng))
    K = generator.crop_intrinsics(joints)
    albedo, light, background = generator.appearance(vertices)
    images, _ = generator.render(vertices, K, albedo.expand(frames, -1, -1),
                                 _repeat_light(light, frames), background.expand(frames, -1,
                                                                                 -1, -1))
    truth_2d = project(joints, K).numpy().astype(float)
    keypoints, confidence = simulated_detections(rng, noise, truth_2d, dropout)
    teacher, teacher_confidence = simulated_teacher(rng, joints.numpy().astype(float),
                                                    confidence, 0.008)
    detected = np.isfinite(keypoints).all(-1).all(-1)
    return ((images * 255).round().to(torch.uint8), _as_float(keypoints),
            _as_float(confidence), torch.ones(frames), K, _as_float(teacher),
            _as_float(teacher_confidence), torch.arange(frames, dtype=torch.float64) / fps,
            joints, detected)


def _as_float(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.nan_to_num(array), dtype=torch.float32)


def _repeat_light(light, frames: int):
    return type(light)(*(getattr(light, name).expand(frames, -1)
                         for name in ("ambient", "directional", "direction")))
