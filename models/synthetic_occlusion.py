"""Objects passing over a synthetic hand sequence (``synthetic_motion``), and what a detector
makes of the covered frames: exact 3D truth for the fit's handling of occlusion on moving
hands (the occlusion benchmark's real clips barely move, and carry 3D on 9 stills only).

An object is a disc that crosses the hand's image on a straight line in 0.2-1 s; a joint is
covered while it lies inside the disc. How the detector answers is a model of what
``bench/occlusion.py`` measured with MediaPipe on real textures (docs/accuracy.md,
"Occlusion"), not a detector: with a share ``c`` of its joints covered the hand is missed
with probability ``miss_per_share * c`` (in runs: the draw is smooth in time); a found hand
is shifted as a whole by ``hand_shift * c`` hand sizes (the detector's uncovered joints under
an object were 1.55x their clean error) and each covered joint by a further
``covered_shift`` (2.3x); its confidence stays as it was (the detector's mistakes under
objects are confident ones). The colour test (``weight.colour_outlier``) flags a covered
joint with probability ``flagged_covered`` and any other with ``flagged_clean``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from .keypoints import hand_sizes


@dataclass(frozen=True)
class OcclusionResponse:
    """The detector's answer to covered joints (defaults: the occlusion benchmark's MediaPipe,
    mean clean error 0.111 hand sizes; the shifts put the uncovered and covered joints of a
    frame with 27% of its joints covered at 1.55x and 2.3x that)."""

    miss_per_share: float = 0.77
    hand_shift: float = 0.49
    covered_shift: float = 0.19
    flagged_covered: float = 0.86
    flagged_clean: float = 0.034


@dataclass
class OccludedDetections:
    """A sequence's detections with objects passing over the hand."""

    keypoints: np.ndarray  # (T, 21, 2) px, NaN where missed
    confidence: np.ndarray  # (T, 21), 0 where missed
    covered: np.ndarray  # (T, 21) bool: inside an object (whether detected or not)
    unlike: np.ndarray  # (T, 21) bool: the colour test's flag (on detected frames)

    @property
    def present(self) -> np.ndarray:
        return np.isfinite(self.keypoints).all(-1).all(-1)

    @property
    def covered_share(self) -> np.ndarray:
        return self.covered.mean(-1)


def passes(joints_2d: np.ndarray, fps: float, rng: np.random.Generator, every_s: float = 1.5,
           span_s: tuple[float, float] = (0.2, 1.0),
           radius: tuple[float, float] = (0.4, 0.9)) -> np.ndarray:
    """(T, 21) bool: the joints of ``joints_2d`` (T, 21, 2) px covered by discs crossing the
    hand, one every ``every_s`` seconds, each taking ``span_s`` seconds to cross, of a radius
    in ``radius`` hand sizes, on a line through the hand's centre (within a third of a hand
    size), at a random angle.

    >>> hand = np.zeros((30, 21, 2)); hand[:, :, 0] = np.linspace(0, 100, 21)
    >>> covered = passes(hand, 30.0, np.random.default_rng(0), every_s=1.0, span_s=(0.5, 0.5))
    >>> covered.shape, bool(covered.any()), bool(covered[0].any())
    ((30, 21), True, False)
    """
    frames = len(joints_2d)
    size = np.median(hand_sizes(joints_2d))
    covered = np.zeros(joints_2d.shape[:2], bool)
    step = max(round(every_s * fps), 1)
    for start in range(step // 2, frames, step):
        length = max(round(rng.uniform(*span_s) * fps), 2)
        middle = min(start + length // 2, frames - 1)
        centre = joints_2d[middle].mean(0)
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])
        across = np.array([-direction[1], direction[0]]) * rng.uniform(-1, 1) * size / 3
        r = rng.uniform(*radius) * size
        reach = r + size  # the disc starts and ends clear of the hand
        for t in range(start, min(start + length, frames)):
            where = centre + across + direction * reach * (2 * (t - start) / (length - 1) - 1)
            covered[t] |= np.linalg.norm(joints_2d[t] - where, axis=-1) < r
    return covered


def occluded_detections(keypoints: np.ndarray, confidence: np.ndarray, joints_2d: np.ndarray,
                        covered: np.ndarray, rng: np.random.Generator,
                        response: OcclusionResponse = OcclusionResponse()
                        ) -> OccludedDetections:
    """The clean detections ``keypoints`` (T, 21, 2) and ``confidence`` (T, 21) of the true
    ``joints_2d`` as the detector gives them with the ``covered`` (T, 21) joints hidden."""
    frames = len(keypoints)
    share = covered.mean(-1)
    size = hand_sizes(joints_2d)
    uniform = _smooth_uniform(rng, frames, 3)
    missed = (share > 0) & (uniform < response.miss_per_share * share)
    shift_angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.1, frames))
    hand_shift = np.stack([np.cos(shift_angle), np.sin(shift_angle)], -1) * (
        response.hand_shift * share * size)[:, None]
    joint_angle = rng.uniform(0, 2 * np.pi, 21) + np.cumsum(rng.normal(0, 0.1, (frames, 21)), 0)
    joint_shift = np.stack([np.cos(joint_angle), np.sin(joint_angle)], -1) * (
        response.covered_shift * covered * size[:, None])[..., None]
    out = keypoints + hand_shift[:, None] + joint_shift
    conf = confidence.copy()
    out[missed], conf[missed] = np.nan, 0.0
    flag_rate = np.where(covered, response.flagged_covered, response.flagged_clean)
    unlike = (rng.uniform(size=covered.shape) < flag_rate) & np.isfinite(out).all(-1)
    return OccludedDetections(out, conf, covered, unlike)


def _smooth_uniform(rng: np.random.Generator, frames: int, hold: int) -> np.ndarray:
    """(frames,) values uniform on (0, 1) that change over about ``hold`` frames: a moving
    sum of ``hold`` white normals (exactly normal, of variance ``hold``) through the normal
    CDF. (``synthetic_motion``'s smooth noise blends key values, so its variance dips
    between keys and would bias the miss rate.)"""
    white = rng.normal(size=frames + hold - 1)
    return ndtr(np.convolve(white, np.ones(hold), mode="valid") / np.sqrt(hold))
