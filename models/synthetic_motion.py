"""Synthetic hand sequences with known motion, and the detections a detector would give, for
the sequence fit's tests and benchmarks (no images: the fit reads detections, not pixels).

Motion: joint angles move smoothly between random key poses inside the anatomical limits
(mostly flexion, as in ``synthetic``), the hand turns and travels smoothly in front of a
1280x720 camera. Detections replay a detector's measured 2D error profile
(``DetectionNoise``), held for a few frames and turning slowly, because real detection errors
persist from frame to frame; a few short dropouts. The simulated teacher 3D is the true
hand-centred skeleton seen in a slightly wrong frame (a slowly varying rotation of 5-15
degrees), with a size error, and with smooth per-joint errors of about the size measured for
MediaPipe's world landmarks. With ``skeleton_m`` the person's skeleton is not the model's: each
rest joint is moved by a random offset of about that size (real hands, and where a detector
places its keypoints, differ from any model's rest skeleton by millimetres to centimetres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from .detection_noise import DetectionNoise
from .geometry import project
from .hand.base import HandModel
from .hand.limits import limits_deg, model_limit_frames
from .keypoints import hand_sizes

WIDTH, HEIGHT, FOCAL = 1280, 720, 1000.0


@dataclass
class SyntheticSequence:
    times: np.ndarray  # (T,) seconds
    K: np.ndarray  # (3, 3)
    joints_3d: np.ndarray  # (T, 21, 3) true joints, camera frame, metres
    joints_2d: np.ndarray  # (T, 21, 2) true projections, pixels
    keypoints: np.ndarray  # (T, 21, 2) simulated detections (NaN where dropped)
    confidence: np.ndarray  # (T, 21) their confidence (0 where dropped)
    teacher: np.ndarray  # (T, 21, 3) simulated detector 3D: hand-centred, its own frame
    teacher_confidence: np.ndarray  # (T, 21)

    @property
    def present(self) -> np.ndarray:
        return np.isfinite(self.keypoints).all(-1).all(-1)


def _smooth_path(frames: int, keys_every: int, draw) -> np.ndarray:
    """Values drawn at key frames and joined by smoothstep (zero velocity at the keys)."""
    n_keys = frames // keys_every + 2
    keys = np.stack([draw() for _ in range(n_keys)])
    position = np.arange(frames) / keys_every
    index = np.floor(position).astype(int)
    fraction = position - index
    blend = (fraction * fraction * (3 - 2 * fraction)).reshape(-1, *[1] * (keys.ndim - 1))
    return keys[index] * (1 - blend) + keys[index + 1] * blend


def _smooth_noise(rng: np.random.Generator, shape: tuple, frames: int, hold: int) -> np.ndarray:
    """(frames, *shape) unit-variance noise that changes over about ``hold`` frames."""
    return _smooth_path(frames, hold, lambda: rng.normal(size=shape))


@dataclass
class HandMotion:
    """A hand's smooth motion over T frames (camera frame, metres, axis-angle)."""

    global_orient: np.ndarray  # (T, 3)
    hand_pose: np.ndarray  # (T, 15, 3)
    betas: np.ndarray  # (S,) one shape for the sequence
    path: np.ndarray  # (T, 3) the middle-finger MCP joint's position
    skeleton: np.ndarray | None = None  # (K, 3) the person's rest-joint offsets, metres


def hand_motion(hand_model: HandModel, frames: int, rng: np.random.Generator,
                skeleton_m: float = 0.0) -> HandMotion:
    """Joint angles moving smoothly between random key poses inside the anatomical limits
    (mostly flexion), palm or back towards the camera turning smoothly, and a smooth path
    0.45-0.8 m in front of the camera; with ``skeleton_m`` > 0, a person's skeleton whose rest
    joints are the model's moved by normal offsets of that deviation (clipped at twice it),
    drawn last so that the other draws are those of ``skeleton_m`` = 0."""
    frames_axes = model_limit_frames(hand_model).double().numpy()
    limits = np.radians(limits_deg())[1:]
    low, high = limits[..., 0], limits[..., 1]

    def key_pose():
        flexion = rng.uniform(0.0, 0.8, 15) * high[:, 0]
        other = rng.uniform(0.3, 0.7, (15, 2)) * (high[:, 1:] - low[:, 1:]) + low[:, 1:]
        return np.concatenate([flexion[:, None], other], -1)

    angles = _smooth_path(frames, int(rng.integers(12, 30)), key_pose)
    hand_pose = np.einsum("tja,jac->tjc", angles, frames_axes[1:])
    facing = np.array([np.pi, 0, 0]) if rng.random() < 0.5 else np.array([0, 0, np.pi])
    turn = _smooth_path(frames, int(rng.integers(20, 45)),
                        lambda: rng.normal(0, [0.5, 0.5, 0.8]))
    orient = roma.rotvec_composition([torch.tensor(turn), torch.tensor(facing).expand(frames, 3)
                                      ]).numpy()
    betas = np.clip(rng.normal(size=hand_model.n_shape), -2, 2)
    path = _smooth_path(frames, int(rng.integers(20, 45)),
                        lambda: [rng.uniform(-0.15, 0.15), rng.uniform(-0.08, 0.08),
                                 rng.uniform(0.45, 0.8)])
    skeleton = None
    if skeleton_m > 0:
        offsets = rng.normal(0, skeleton_m, (len(hand_model.parents), 3))
        skeleton = np.clip(offsets, -2 * skeleton_m, 2 * skeleton_m)
    return HandMotion(orient, hand_pose, betas, path, skeleton)


def posed(hand_model: HandModel, motion: HandMotion) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, V, 3) vertices and (T, 21, 3) joints of ``motion``, camera frame, metres."""
    frames = len(motion.path)
    offsets = None
    if motion.skeleton is not None:
        offsets = torch.tensor(motion.skeleton, dtype=torch.float32).expand(frames, -1, -1)
    with torch.no_grad():
        out = hand_model(torch.tensor(motion.global_orient, dtype=torch.float32),
                         torch.tensor(motion.hand_pose, dtype=torch.float32),
                         torch.tensor(motion.betas, dtype=torch.float32).expand(frames, -1),
                         offsets)
    shift = torch.tensor(motion.path, dtype=torch.float32)[:, None] - out.joints[:, 9:10]
    return out.vertices + shift, out.joints + shift


def synthetic_sequence(hand_model: HandModel, noise: DetectionNoise, frames: int, seed: int,
                       fps: float = 30.0, dropout: float = 0.05,
                       teacher_error_m: float = 0.008, skeleton_m: float = 0.0
                       ) -> SyntheticSequence:
    """A hand moving as ``hand_motion`` draws it (with a person's skeleton when
    ``skeleton_m`` > 0), its simulated detections and teacher 3D."""
    rng = np.random.default_rng(seed)
    motion = hand_motion(hand_model, frames, rng, skeleton_m)
    joints = posed(hand_model, motion)[1].numpy().astype(float)
    K = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1.0]])
    joints_2d = project(torch.tensor(joints), torch.tensor(K).expand(frames, 3, 3)).numpy()
    keypoints, confidence = simulated_detections(rng, noise, joints_2d, dropout)
    teacher, teacher_confidence = simulated_teacher(rng, joints, confidence, teacher_error_m)
    return SyntheticSequence(np.arange(frames) / fps, K, joints, joints_2d, keypoints,
                             confidence, teacher, teacher_confidence)


def simulated_detections(rng: np.random.Generator, noise: DetectionNoise, joints_2d: np.ndarray,
                         dropout: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, 21, 2) detections of ``joints_2d`` (any pixel unit) replaying ``noise``, with
    their (T, 21) confidence; NaN and 0 on the dropped frames."""
    frames = len(joints_2d)
    hold = 8
    size = hand_sizes(joints_2d)
    profile = rng.integers(len(noise.errors), size=frames // hold + 1).repeat(hold)[:frames]
    angle = np.cumsum(rng.normal(0, 0.4, (frames, 21)), axis=0) + rng.uniform(0, 6.3, 21)
    direction = np.stack([np.cos(angle), np.sin(angle)], -1)
    magnitude = noise.errors[profile] * (1 + 0.2 * _smooth_noise(rng, (21,), frames, 4))
    keypoints = joints_2d + direction * (np.abs(magnitude) * size[:, None])[..., None]
    confidence = noise.confidence[profile].copy()
    dropped = np.zeros(frames, bool)
    for start in rng.choice(frames, size=max(int(frames * dropout / 3), 0), replace=False):
        dropped[start : start + int(rng.integers(1, 6))] = True
    keypoints[dropped], confidence[dropped] = np.nan, 0.0
    return keypoints, confidence


def simulated_teacher(rng: np.random.Generator, joints: np.ndarray, confidence: np.ndarray,
                      error_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, 21, 3) a detector's hand-centred 3D of ``joints`` and its (T, 21) confidence."""
    frames = len(joints)
    centred = joints - joints.mean(1, keepdims=True)
    tilt = np.radians(rng.uniform(5, 15)) * _smooth_noise(rng, (3,), frames, 30)
    rotation = roma.rotvec_to_rotmat(torch.tensor(tilt)).numpy()
    errors = error_m * _smooth_noise(rng, (21, 3), frames, 6)
    size = rng.uniform(0.9, 1.1)
    teacher = size * np.einsum("tij,tnj->tni", rotation, centred) + errors
    teacher[~np.isfinite(confidence.sum(-1)) | (confidence.sum(-1) == 0)] = np.nan
    return teacher, np.where(np.isfinite(teacher).all(-1), confidence, 0.0)
