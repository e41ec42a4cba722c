"""Simulated 2D detections for synthetic hands, drawn from a detector's measured behaviour.

``DetectionNoise`` holds, per real detected hand, the 21 joint errors (in hand sizes, the
longer side of the keypoint box) and the confidences the detector gave them. A simulated hand
takes one real hand's errors and confidences joint by joint, in random directions, so the
error sizes, their spread within a hand and the confidence-error relation are those measured
(directions are not: real errors are not isotropic). Missing joints of a real hand take the
median of that joint over all hands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .keypoints import hand_sizes


@dataclass(frozen=True)
class DetectionNoise:
    errors: np.ndarray  # (H, 21) normalised errors of H real detected hands
    confidence: np.ndarray  # (H, 21)
    sigma: float | None = None  # isotropic Gaussian noise instead (tests)

    @classmethod
    def from_joint_table(cls, table: pd.DataFrame) -> DetectionNoise:
        """From a per-joint evaluation table (columns id, joint, detected, error_norm,
        confidence), as ``tasks.evaluate_keypoints`` writes it."""
        found = table[table["detected"]]
        if found.empty:
            raise ValueError("no detected hands in the table: nothing to measure noise from")
        errors = found.pivot_table(index="id", columns="joint", values="error_norm")
        confidence = found.pivot_table(index="id", columns="joint", values="confidence")
        errors = errors.reindex(columns=range(21)).fillna(errors.median())
        confidence = confidence.reindex(columns=range(21)).fillna(confidence.median())
        return cls(errors.to_numpy(float), confidence.to_numpy(float))

    @classmethod
    def gaussian(cls, sigma: float, confidence: float = 1.0) -> DetectionNoise:
        """Isotropic Gaussian noise of ``sigma`` hand sizes per axis and a fixed confidence."""
        return cls(np.zeros((1, 21)), np.full((1, 21), confidence), sigma)

    def simulate(self, keypoints: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 21, 2) exact keypoints -> (noisy keypoints, confidence (N, 21))."""
        n = keypoints.shape[0]
        size = hand_sizes(keypoints)
        hands = rng.integers(len(self.errors), size=n)
        angle = rng.uniform(0, 2 * np.pi, (n, 21))
        direction = np.stack([np.cos(angle), np.sin(angle)], -1)
        if self.sigma is not None:
            offsets = rng.normal(0, self.sigma, (n, 21, 2)) * size[:, None, None]
        else:
            offsets = direction * (self.errors[hands] * size[:, None])[..., None]
        return keypoints + offsets, self.confidence[hands].copy()
