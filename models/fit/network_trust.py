"""How much a video's sequence fit trusts the trained network's 3D (``terms.network_3d``),
calibrated on the video itself.

The network's projected joints are compared with the video's detections, each hand's joints
weighted as the weight stage weighs them (equally where it gave the whole hand weight 0: on
some footage TTA zeroes most hands, and they are still the detections the fit has). A
network as close to them as the detector is to the truth (``DETECTOR_NOISE``) gets trust 1,
one twice as far a quarter: the inverse square, as a Gaussian term's weight goes
with its variance. Both the detector's noise and the network's error are in hand sizes (the
longer side of the keypoint box), so the trust does not depend on the video's resolution.

The comparison is in-sample where the network was trained on this video's detections (the
train stage's crops), so it flatters the network; the self-check (``selfcheck.py``) is what
says, without truth, whether the labels gained by it.
"""

from __future__ import annotations

import numpy as np

from ..keypoints import hand_sizes

# MediaPipe's median 2D error on ../shared/data/labelled/ (docs/accuracy.md, "The network")
DETECTOR_NOISE = 0.067
MIN_HANDS = 8  # fewer comparable hands in a video: no trust (nothing to calibrate on)


def network_error(network_2d: np.ndarray, detections: np.ndarray, weights: np.ndarray
                  ) -> float:
    """The network's median 2D distance from the trusted detections, in hand sizes.

    Args:
        network_2d: (N, 21, 2) the network's projected joints, frame pixels (NaN: none).
        detections: (N, 21, 2) the detections of the same hands.
        weights: (N, 21) the weight stage's joint weights (0 where undetected).

    Returns:
        The median over hands of the joint-weighted mean distance; NaN with fewer than
        ``MIN_HANDS`` hands seen by both.

    >>> hand = np.random.default_rng(0).uniform(0, 100, (10, 21, 2))
    >>> size = hand_sizes(hand)[:, None, None]
    >>> round(network_error(hand + [0.1, 0.0] * size, hand, np.ones((10, 21))), 3)
    0.1
    """
    if network_2d.shape != detections.shape or network_2d.shape[1:] != (21, 2):
        raise ValueError(f"expected two (N, 21, 2) keypoint arrays, got {network_2d.shape} "
                         f"and {detections.shape}")
    usable = np.isfinite(network_2d).all((-1, -2)) & np.isfinite(detections).all((-1, -2))
    if usable.sum() < MIN_HANDS:
        return float("nan")
    size = hand_sizes(detections[usable])
    distance = np.linalg.norm(network_2d[usable] - detections[usable], axis=-1) / size[:, None]
    w = np.clip(weights[usable], 0, None)
    w = np.where(w.sum(-1, keepdims=True) > 0, w, 1.0)
    return float(np.median((distance * w).sum(-1) / w.sum(-1)))


def network_trust(error: float, noise: float = DETECTOR_NOISE) -> float:
    """The network term's per-frame confidence for a network ``error`` hand sizes off the
    detections: (noise / error)^2, at most 1; 0 where the error is unknown.

    >>> network_trust(0.067), network_trust(0.134), network_trust(float("nan"))
    (1.0, 0.25, 0.0)
    """
    if not np.isfinite(error):
        return 0.0
    return float(min(1.0, (noise / max(error, 1e-9)) ** 2))
