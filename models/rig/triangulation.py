"""Confidence-weighted triangulation of one hand's 21 joints over C calibrated views.

Written here rather than taken from aniposelib: its DLT (``triangulate_simple``) weighs every
view alike and its RANSAC keeps or drops whole views by a pixel threshold, where a
detector's per-joint confidences and hand-size-relative residuals are what we have.

Shapes: C views, J joints; pixels are undistorted (``RigGeometry.undistort``); P (C, 3, 4)
maps world metres to undistorted pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..tracking import N_SLOTS

MIN_WEIGHT = 1e-6
UNMATCHED_COST = 10.0  # hand sizes: a missing pair's cost when pairings are compared


@dataclass(frozen=True)
class Triangulated:
    """One hand's triangulation.

    Attributes:
        joints: (J, 3) world metres (NaN where fewer than two views agree).
        used: (C, J) the views each joint was solved from.
        residual: (C, J) reprojection distance in pixels, in every view with a detection.
        confidence: (J,) in [0, 1]: the used views' mean detection weight, times
            exp(-1/2 (r / s)^2) for the used views' mean residual r in hand sizes.
    """

    joints: np.ndarray
    used: np.ndarray
    residual: np.ndarray
    confidence: np.ndarray


def weighted_dlt(pixels: np.ndarray, weights: np.ndarray, P: np.ndarray) -> np.ndarray:
    """(J, 3) the joints that best explain (C, J, 2) ``pixels`` in the least-squares sense of
    the DLT, each view's two equations scaled by its (C, J) ``weights``; NaN for a joint with
    fewer than two weighted views.

    >>> P = np.stack([np.hstack([np.eye(3), np.zeros((3, 1))]),
    ...               np.hstack([np.eye(3), [[-1.0], [0.0], [0.0]]])])
    >>> point = np.array([0.2, -0.1, 2.0])
    >>> pixels = np.stack([(p @ np.append(point, 1))[:2] / (p @ np.append(point, 1))[2]
    ...                    for p in P])[:, None]
    >>> np.round(weighted_dlt(pixels, np.ones((2, 1)), P), 6).tolist()
    [[0.2, -0.1, 2.0]]
    """
    if pixels.ndim != 3 or pixels.shape[-1] != 2 or P.shape != (len(pixels), 3, 4):
        raise ValueError(f"expected (C, J, 2) pixels and (C, 3, 4) P, got {pixels.shape} and "
                         f"{P.shape}")
    w = np.where(np.isfinite(pixels).all(-1), np.clip(weights, 0, None), 0.0)
    x = np.nan_to_num(pixels)
    # rows x P3 - P1 and y P3 - P2 per view: (J, 2C, 4)
    rows = x[..., None] * P[:, None, 2:3, :] - P[:, None, :2, :]
    # each equation to unit length (so a camera's distance or focal length does not weigh
    # it), then to its view's weight
    rows = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)
    rows = rows * w[..., None, None]
    A = rows.transpose(1, 0, 2, 3).reshape(pixels.shape[1], -1, 4)
    _, _, vh = np.linalg.svd(A)
    homogeneous = vh[:, -1]
    joints = homogeneous[:, :3] / np.where(np.abs(homogeneous[:, 3:]) > 1e-12,
                                           homogeneous[:, 3:], np.nan)
    enough = (w > MIN_WEIGHT).sum(0) >= 2
    return np.where(enough[:, None], joints, np.nan)


def reproject(joints: np.ndarray, P: np.ndarray) -> np.ndarray:
    """(C, J, 2) undistorted pixels of (J, 3) world joints."""
    homogeneous = np.concatenate([joints, np.ones((len(joints), 1))], -1)
    uvw = np.einsum("cij,nj->cni", P, homogeneous)
    return uvw[..., :2] / uvw[..., 2:]


def triangulate_hand(pixels: np.ndarray, weights: np.ndarray, P: np.ndarray,
                     hand_size_px: np.ndarray, inlier: float, confidence_scale: float
                     ) -> Triangulated:
    """Triangulate one hand, robust to one bad view where three or more see a joint.

    Args:
        pixels: (C, J, 2) undistorted detections (NaN where a view has none).
        weights: (C, J) detection weights (0 where a view has none).
        P: (C, 3, 4) projection matrices.
        hand_size_px: (C,) the hand's size in each view, pixels (residuals are compared in
            hand sizes, so that a near and a far camera count alike).
        inlier: residual (hand sizes) above which a view is an outlier for a joint.
        confidence_scale: residual (hand sizes) at which the confidence falls to exp(-1/2).

    With 3+ weighted views a joint is solved from each pair, the pair with the most inliers
    (then the smallest inlier residual) wins, and the joint is solved again from its inliers
    (RANSAC over every pair: C is small). With two views both are used; their disagreement
    only lowers the confidence.
    """
    has = (weights > MIN_WEIGHT) & np.isfinite(pixels).all(-1)
    size = np.maximum(np.asarray(hand_size_px, float), 1.0)[:, None]
    used = has.copy()
    if len(P) >= 3:
        used = _consensus(pixels, weights, P, has, size, inlier)
    joints = weighted_dlt(pixels, np.where(used, weights, 0.0), P)
    residual = np.linalg.norm(reproject(np.nan_to_num(joints), P) - pixels, axis=-1)
    residual = np.where(has & np.isfinite(joints).all(-1)[None], residual, np.nan)
    relative = residual / size
    count = used.sum(0)
    mean_residual = np.where(used, np.nan_to_num(relative), 0).sum(0) / np.maximum(count, 1)
    mean_weight = np.where(used, weights, 0).sum(0) / np.maximum(count, 1)
    confidence = mean_weight * np.exp(-0.5 * (mean_residual / confidence_scale) ** 2)
    confidence = np.where((count >= 2) & np.isfinite(joints).all(-1), confidence, 0.0)
    return Triangulated(joints, used, residual, np.clip(confidence, 0, 1))


def _consensus(pixels, weights, P, has, size, inlier) -> np.ndarray:
    """(C, J) per joint the inlier views of the best pair's solution."""
    best_count = np.zeros(pixels.shape[1], int)
    best_cost = np.full(pixels.shape[1], np.inf)
    best = has.copy()
    for a, b in combinations(range(len(P)), 2):
        pair = np.zeros_like(weights)
        pair[[a, b]] = weights[[a, b]]
        joints = weighted_dlt(pixels, np.where(has, pair, 0.0), P)
        relative = np.linalg.norm(reproject(np.nan_to_num(joints), P) - pixels, axis=-1) / size
        inliers = has & (relative < inlier) & np.isfinite(joints).all(-1)[None]
        count = inliers.sum(0)
        cost = np.where(inliers, relative, 0).sum(0)
        better = (count > best_count) | ((count == best_count) & (cost < best_cost) &
                                         (count >= 2))
        best_count = np.where(better, count, best_count)
        best_cost = np.where(better, cost, best_cost)
        best = np.where(better[None], inliers, best)
    return np.where(best_count[None] >= 2, best, has)


def match_cost(pixels_a: np.ndarray, weights_a: np.ndarray, pixels_b: np.ndarray,
               weights_b: np.ndarray, P: np.ndarray, sizes: np.ndarray) -> float:
    """How badly two views' hands (21, 2) each agree with being one hand: the weighted median
    of the two-view triangulation's residuals in hand sizes (inf without two usable joints).
    Geometry decides which detection in one camera is which in the other, not the
    detector's handedness labels, which flip between views of the same hand."""
    pixels = np.stack([pixels_a, pixels_b])
    weights = np.stack([weights_a, weights_b])
    joints = weighted_dlt(pixels, weights, P)
    usable = np.isfinite(joints).all(-1) & (weights > MIN_WEIGHT).all(0)
    if usable.sum() < 2:
        return float("inf")
    relative = np.linalg.norm(reproject(joints[usable], P) - pixels[:, usable], axis=-1)
    relative = relative / np.maximum(sizes, 1.0)[:, None]
    return float(np.median(relative.max(0)))


@dataclass(frozen=True)
class CameraView:
    """One camera's detections over a rig's frames, undistorted, with their weights.

    Attributes:
        present: (N, N_SLOTS) bool, a hand in the slot.
        pixels: (N, N_SLOTS, 21, 2) undistorted keypoints, pixels.
        weights: (N, N_SLOTS, 21) joint weights, 0 where absent.
        size: (N, N_SLOTS) hand sizes, pixels (1 where absent).
    """

    present: np.ndarray
    pixels: np.ndarray
    weights: np.ndarray
    size: np.ndarray


def matched_slots(views: list[CameraView], ref: int, frame: int, P: np.ndarray, inlier: float
                  ) -> np.ndarray:
    """(N_SLOTS, C) per hand slot of camera ``ref``, the slot of each camera showing the same
    hand at ``frame`` (-1: none): between ``ref`` and each other camera, the pairing of their
    hands (straight or crossed) with the lowest summed ``match_cost``, each pair under
    ``inlier`` hand sizes.

    Args:
        views: per camera, its ``CameraView``.
        P: (C, 3, 4) projection matrices.
    """
    chosen = np.full((N_SLOTS, len(views)), -1, int)
    mine = views[ref]
    for hand in range(N_SLOTS):
        if mine.present[frame, hand]:
            chosen[hand, ref] = hand
    for camera, view in enumerate(views):
        if camera == ref:
            continue
        pair = P[[ref, camera]]
        cost = np.full((N_SLOTS, N_SLOTS), np.inf)
        for hand in np.flatnonzero(mine.present[frame]):
            for slot in np.flatnonzero(view.present[frame]):
                cost[hand, slot] = match_cost(
                    mine.pixels[frame, hand], mine.weights[frame, hand],
                    view.pixels[frame, slot], view.weights[frame, slot], pair,
                    np.array([mine.size[frame, hand], view.size[frame, slot]]))
        pairing = ((0, 0), (1, 1)) if _total(cost, 0) <= _total(cost, 1) else ((0, 1), (1, 0))
        for hand, slot in pairing:
            if cost[hand, slot] < inlier:
                chosen[hand, camera] = slot
    return chosen


def _total(cost: np.ndarray, crossed: int) -> float:
    """The summed cost of a pairing, a missing pair counting as a fixed penalty (so one good
    pair beats two bad ones)."""
    pairs = [(0, crossed), (1, 1 - crossed)]
    return sum(min(cost[h, s], UNMATCHED_COST) for h, s in pairs)
