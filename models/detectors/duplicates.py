"""Two detections of one hand become one (ghost hands).

MediaPipe's own graph drops a hand when at least 10 of its 21 landmarks lie within 0.2 palm
baselines of another hand's, index for index, and their landmark boxes overlap (IoU > 0.2).
A second reading of the same hand with its fingers in another order (often with the other
handedness) escapes that test. On the sample cups clip 37 of 181 two-hand frames held such
a pair, every one of them on a single hand (looked at, docs/components.md), and while the
ghost held the tracker's second place, MediaPipe's VIDEO mode ran no palm detection, so the
real second hand went unseen.

Here two detections are one hand when their joints cover the same points whatever their
order: the symmetric mean distance from each joint to the nearest joint of the other hand is
under 0.3 palm baselines (the ghosts on the cups clip: 0.09-0.21), and their landmark boxes
overlap (IoU > 0.1: some ghosts cover the fingers only, at IoU 0.18-0.20). Two real hands
that touch or cross keep most of their joints apart, so they stay two. Two hands stacked
palm on palm with their centres together would read as one: 2D joints cannot tell them
from a second reading.
"""

from __future__ import annotations

import numpy as np

from .schema import HandDetection

MIN_BOX_IOU = 0.1
MAX_POINT_DISTANCE = 0.3  # palm baselines
_WRIST, _INDEX_MCP, _PINKY_MCP = 0, 5, 17


def palm_baseline(keypoints: np.ndarray) -> float:
    """The longest side of the wrist / index-MCP / pinky-MCP triangle (21, 2) -> pixels: a
    hand size that holds across poses (MediaPipe's baseline distance)."""
    corners = keypoints[[_WRIST, _INDEX_MCP, _PINKY_MCP]]
    return float(np.linalg.norm(corners - np.roll(corners, 1, axis=0), axis=1).max())


def _landmark_box_iou(a: np.ndarray, b: np.ndarray) -> float:
    low, high = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.clip(high - low, 0, None)))
    union = float(np.prod(np.ptp(a, axis=0)) + np.prod(np.ptp(b, axis=0))) - inter
    return inter / union if union > 0 else 0.0


def point_set_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean nearest-joint distance between two (21, 2) joint sets, in pixels."""
    distances = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return float((distances.min(1).mean() + distances.min(0).mean()) / 2)


def same_hand(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two (21, 2) joint sets are two readings of one hand (see the module doc).

    >>> hand = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]] * 4 + [[5, 5]], float) * 10
    >>> hand[[0, 5, 17]] = [[0, 0], [40, -30], [-20, -40]]
    >>> same_hand(hand, hand[::-1] + 2.0), same_hand(hand, hand + 80.0)
    (True, False)
    """
    scale = max(palm_baseline(a), palm_baseline(b), 1e-6)
    return (_landmark_box_iou(a, b) > MIN_BOX_IOU
            and point_set_distance(a, b) < MAX_POINT_DISTANCE * scale)


def without_duplicates(hands: list[HandDetection]) -> list[HandDetection]:
    """The hands, best (highest score) first, less each one that repeats a better one."""
    kept: list[HandDetection] = []
    for hand in sorted(hands, key=lambda h: -h.score):
        if not any(same_hand(hand.keypoints, other.keypoints) for other in kept):
            kept.append(hand)
    return kept


def add_new_hands(kept: list[HandDetection], found: list[HandDetection], limit: int
                  ) -> list[HandDetection]:
    """``kept`` plus the hands of ``found`` that none of them repeats, up to ``limit``."""
    for hand in without_duplicates(found):
        if len(kept) >= limit:
            break
        if not any(same_hand(hand.keypoints, other.keypoints) for other in kept):
            kept = [*kept, hand]
    return kept
