"""Synthetic hand crops with exact labels, for tests and benchmarks.

Random plausible poses (angles drawn inside the anatomical limits, mostly flexion), random
shapes, skin tones with low-frequency variation, random lighting, rendered over background
crops that the caller provides (storage.backgrounds reads them from real videos). Each sample
carries the exact 3D joints (camera frame, metres), 2D joints (crop pixels), K, mask and the
hand-model parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from .geometry import project
from .hand.base import HandModel
from .hand.limits import joint_frames, limits_deg
from .render import Light, Renderer

# skin albedos from light to dark (linear RGB, approximate)
SKIN_TONES = np.array([[0.87, 0.70, 0.60], [0.80, 0.60, 0.48], [0.70, 0.50, 0.38],
                       [0.55, 0.38, 0.27], [0.40, 0.27, 0.19], [0.28, 0.18, 0.13]])


@dataclass
class SyntheticBatch:
    images: torch.Tensor  # (B, S, S, 3) float in [0, 1]
    masks: torch.Tensor  # (B, S, S) bool
    joints_3d: torch.Tensor  # (B, 21, 3) camera frame, metres
    joints_2d: torch.Tensor  # (B, 21, 2) crop pixels
    K: torch.Tensor  # (B, 3, 3)
    global_orient: torch.Tensor  # (B, 3)
    hand_pose: torch.Tensor  # (B, 15, 3)
    betas: torch.Tensor  # (B, n_shape)


class SyntheticHands:
    def __init__(self, model: HandModel, renderer: Renderer, backgrounds: list[np.ndarray],
                 rest_joints: np.ndarray, size: int = 224, seed: int = 0,
                 max_tilt_deg: float | None = None, crop_margin: float | None = None,
                 coupled_fraction: float = 0.0):
        if not backgrounds:
            raise ValueError("SyntheticHands needs at least one background image")
        self.model, self.renderer, self.size = model, renderer, size
        self.backgrounds = backgrounds
        self.frames = torch.tensor(joint_frames(rest_joints), dtype=torch.float32)
        self.limits = np.radians(limits_deg())
        self.rng = np.random.default_rng(seed)
        self.max_tilt_deg = max_tilt_deg
        self.crop_margin = crop_margin
        self.coupled_fraction = coupled_fraction

    def _poses(self, n: int) -> torch.Tensor:
        low, high = self.limits[1:, :, 0], self.limits[1:, :, 1]
        flexion = self.rng.uniform(0.0, 0.7, (n, 15)) * high[:, 0]  # mostly bending
        other = self.rng.uniform(0.3, 0.7, (n, 15, 2)) * (high[:, 1:] - low[:, 1:]) + low[:, 1:]
        if self.coupled_fraction > 0:
            coupled = self.rng.random(n) < self.coupled_fraction
            flexion[coupled] = self._coupled_flexion(int(coupled.sum()), high[:, 0])
        angles = torch.tensor(np.concatenate([flexion[..., None], other], -1), dtype=torch.float32)
        return torch.einsum("bja,jac->bjc", angles, self.frames[1:])

    def _coupled_flexion(self, n: int, high: np.ndarray) -> np.ndarray:
        """(n, 15) flexion angles where each finger's three joints bend together, as real
        fingers do (one curl level per finger, 0 open to 1 closed, +-15% per joint): open
        hands, fists, pointing and pinching rather than independent joint angles."""
        curl = self.rng.random((n, 5)) ** self.rng.uniform(0.5, 2.0, (n, 1))
        per_joint = np.repeat(curl, 3, axis=1) * self.rng.uniform(0.85, 1.15, (n, 15))
        return np.clip(per_joint, 0.0, 1.0) * high

    def _colors(self, vertices: torch.Tensor) -> torch.Tensor:
        n = vertices.shape[0]
        tone = torch.tensor(SKIN_TONES[self.rng.integers(len(SKIN_TONES), size=n)],
                            dtype=torch.float32)
        frequency = torch.tensor(self.rng.uniform(20, 60, (n, 1, 3)), dtype=torch.float32)
        phase = torch.tensor(self.rng.uniform(0, 6.3, (n, 1, 3)), dtype=torch.float32)
        variation = 1 + 0.08 * torch.sin(vertices.float() * frequency + phase).mean(-1,
                                                                                  keepdim=True)
        return (tone[:, None] * variation).clamp(0, 1)

    def _lights(self, n: int) -> Light:
        direction = self.rng.normal(size=(n, 3)) * [0.6, 0.6, 0.3] + [0.0, 0.0, 1.0]
        return Light(torch.tensor(self.rng.uniform(0.3, 0.7, (n, 1)) * np.ones(3),
                                  dtype=torch.float32),
                     torch.tensor(self.rng.uniform(0.2, 0.8, (n, 1)) * np.ones(3),
                                  dtype=torch.float32),
                     torch.nn.functional.normalize(torch.tensor(direction,
                                                                dtype=torch.float32), dim=-1))

    def _background(self) -> torch.Tensor:
        image = self.backgrounds[self.rng.integers(len(self.backgrounds))]
        side = int(min(image.shape[:2]) * self.rng.uniform(0.3, 1.0))
        y = self.rng.integers(0, image.shape[0] - side + 1)
        x = self.rng.integers(0, image.shape[1] - side + 1)
        crop = torch.tensor(image[y : y + side, x : x + side], dtype=torch.float32) / 255
        crop = torch.nn.functional.interpolate(crop.permute(2, 0, 1)[None], size=self.size,
                                               mode="bilinear", align_corners=False)
        return crop[0].permute(1, 2, 0)

    def _orientations(self, n: int) -> torch.Tensor:
        """Uniform rotations; or, with ``max_tilt_deg``, palm or back towards the camera,
        any in-plane angle, tilted out of the image plane by at most that angle (the spread
        of hands filmed from the front)."""
        if self.max_tilt_deg is None:
            quaternions = torch.tensor(self.rng.normal(size=(n, 4)), dtype=torch.float32)
            return roma.unitquat_to_rotvec(roma.quat_normalize(quaternions))
        # the model's fingers point along +y, its palm along +z: turn the palm or the back
        # towards the camera (which looks along +z) with the fingers up
        palm = torch.tensor([np.pi, 0.0, 0.0])
        back = torch.tensor([0.0, 0.0, np.pi])
        facing = torch.stack([palm if flip else back for flip in self.rng.random(n) < 0.5])
        axis_angle = self.rng.uniform(0, 2 * np.pi, n)
        tilt = np.radians(self.rng.uniform(0, self.max_tilt_deg, n))
        tilts = np.stack([np.cos(axis_angle), np.sin(axis_angle), np.zeros(n)], -1) * tilt[:, None]
        spin = np.stack([np.zeros(n), np.zeros(n), self.rng.uniform(-np.pi, np.pi, n)], -1)
        rotation = roma.rotvec_composition([torch.tensor(spin, dtype=torch.float32),
                                            torch.tensor(tilts, dtype=torch.float32), facing])
        return rotation

    def _intrinsics(self, joints: torch.Tensor, depth_per_extent: torch.Tensor) -> torch.Tensor:
        """K that makes the hand's bounding radius 0.36-0.45 of the image side."""
        n = joints.shape[0]
        focal = 0.45 * self.size * depth_per_extent * torch.tensor(self.rng.uniform(0.8, 1.0, n))
        principal = (self.size - 1) / 2 + torch.tensor(self.rng.uniform(-8, 8, (n, 2)))
        return _pinhole(focal.float(), principal.float())

    def _crop_intrinsics(self, joints: torch.Tensor) -> torch.Tensor:
        """K of a crop framed as the pipeline frames detected hands (``models.crops``): a
        square ``crop_margin`` times the joints' longer box side around the box centre, with
        the detector's box noise (side +-10%, centre +-5% of the side)."""
        n = joints.shape[0]
        normalised = joints[..., :2] / joints[..., 2:]
        low, high = normalised.min(1).values, normalised.max(1).values
        jitter = torch.tensor(self.rng.uniform(0.9, 1.1, n), dtype=torch.float32)
        side = (high - low).max(-1).values * self.crop_margin * jitter
        shift = torch.tensor(self.rng.uniform(-0.05, 0.05, (n, 2)), dtype=torch.float32)
        centre = (low + high) / 2 + side[:, None] * shift
        focal = self.size / side
        return _pinhole(focal, (self.size - 1) / 2 - focal[:, None] * centre)

    def sample(self, n: int) -> SyntheticBatch:
        orient = self._orientations(n)
        pose = self._poses(n)
        betas = torch.tensor(np.clip(self.rng.normal(size=(n, self.model.n_shape)), -2, 2),
                             dtype=torch.float32)
        with torch.no_grad():
            out = self.model(orient, pose, betas)
        center = out.vertices.mean(1, keepdim=True)
        extent = (out.vertices - center).norm(dim=-1).max(1).values  # bounding radius
        depth = torch.tensor(self.rng.uniform(0.4, 0.8, n), dtype=torch.float32)
        offset = torch.stack([torch.zeros(n), torch.zeros(n), depth], -1)[:, None]
        vertices, joints = out.vertices - center + offset, out.joints - center + offset
        K = self._intrinsics(joints, depth / extent) if self.crop_margin is None else \
            self._crop_intrinsics(joints)
        images, masks = self.render(vertices, K, self._colors(vertices), self._lights(n),
                                    torch.stack([self._background() for _ in range(n)]))
        return SyntheticBatch(images, masks, joints, project(joints, K), K, orient, pose, betas)

    def crop_intrinsics(self, joints: torch.Tensor) -> torch.Tensor:
        """(B, 3, 3) K of crops framing ``joints`` (B, 21, 3) as the pipeline frames detected
        hands (``crop_margin``, default 1.6, with the detector's box noise)."""
        if self.crop_margin is None:
            raise ValueError("crop_intrinsics needs SyntheticHands(crop_margin=...)")
        return self._crop_intrinsics(joints)

    def appearance(self, vertices: torch.Tensor) -> tuple[torch.Tensor, Light, torch.Tensor]:
        """One random skin albedo (1, V, 3), light and background crop (S, S, 3): a hand's
        look, to hold through a sequence."""
        return self._colors(vertices[:1]), self._lights(1), self._background()

    def render(self, vertices: torch.Tensor, K: torch.Tensor, albedo: torch.Tensor,
               light: Light, backgrounds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hands (B, V, 3) seen through K (B, 3, 3) over ``backgrounds`` (B, S, S, 3): images
        (B, S, S, 3) in [0, 1] and masks (B, S, S) bool."""
        rendered = self.renderer.render(vertices, self.model.faces, albedo, K, self.size,
                                        self.size, light)
        alpha = rendered.silhouette[..., None].float()
        images = (rendered.image.float() * alpha + backgrounds * (1 - alpha)).clamp(0, 1)
        return images.detach(), (rendered.silhouette > 0.5).detach()


def _pinhole(focal: torch.Tensor, principal: torch.Tensor) -> torch.Tensor:
    """(B,) focal lengths and (B, 2) principal points -> (B, 3, 3) intrinsics."""
    K = torch.zeros(focal.shape[0], 3, 3)
    K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = focal, focal, 1.0
    K[:, :2, 2] = principal
    return K
