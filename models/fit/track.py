"""A slot's frames cut into tracks, and what a track's fit starts from: gaps filled, and the
track's size from the teacher's metric 3D."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..hand.base import HandModel
from ..tracking import box_iou
from .sequence import (
    FitParameters,
    FitWeights,
    TrackObservations,
    better_start,
    teacher_start,
)

WRIST, MIDDLE_MCP = 0, 9


def track_spans(present: np.ndarray, times: np.ndarray, max_gap_s: float,
                blocked: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(start, stop) frame ranges of the tracks in one slot's ``present`` (T,): runs of
    detections whose gaps last at most ``max_gap_s`` and hold no ``blocked`` frame (where
    filling would put a second hand on one the other slot already has); each span starts
    and ends detected.

    >>> track_spans(np.array([0, 1, 1, 0, 1, 0, 0, 0, 1], bool), np.arange(9) / 10, 0.25)
    [(1, 5), (8, 9)]
    >>> blocked = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0], bool)
    >>> track_spans(np.array([0, 1, 1, 0, 1, 0, 0, 0, 1], bool), np.arange(9) / 10, 0.25,
    ...             blocked)
    [(1, 3), (4, 5), (8, 9)]
    """
    frames = np.flatnonzero(present)
    if not len(frames):
        return []
    blocked_before = np.cumsum(blocked) if blocked is not None else np.zeros(len(present))
    gap_blocked = blocked_before[frames[1:] - 1] - blocked_before[frames[:-1]] > 0
    breaks = np.flatnonzero((np.diff(times[frames]) > max_gap_s + 1e-9) | gap_blocked)
    starts = np.concatenate([[frames[0]], frames[breaks + 1]])
    stops = np.concatenate([frames[breaks], [frames[-1]]]) + 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def taken_by_other(boxes: np.ndarray, present: np.ndarray, other_boxes: np.ndarray,
                   other_present: np.ndarray, min_iou: float = 0.3) -> np.ndarray:
    """(T,) frames where this slot has no hand but the other slot has one overlapping this
    slot's last box (a hand the tracker moved between slots: not one to fill in twice)."""
    blocked = np.zeros(len(present), bool)
    last = None
    for t in range(len(present)):
        if present[t]:
            last = boxes[t]
        elif last is not None and other_present[t]:
            blocked[t] = box_iou(last, other_boxes[t]) >= min_iou
    return blocked


def fill_gaps(p: FitParameters, known: torch.Tensor, times: torch.Tensor) -> FitParameters:
    """Per-frame parameters interpolated in time over the frames where ``known`` (T,) is
    False (linear in axis-angle and position: only a start, which the temporal terms then
    shape). Needs at least one known frame."""
    t = times.detach().cpu().numpy()
    at = np.flatnonzero(known.cpu().numpy())

    def fill(values: torch.Tensor) -> torch.Tensor:
        flat = values.detach().reshape(len(t), -1).cpu().numpy()
        filled = np.stack([np.interp(t, t[at], column[at]) for column in flat.T], axis=1)
        return torch.as_tensor(filled, dtype=values.dtype).reshape(values.shape).to(values)

    return replace(p, global_orient=fill(p.global_orient), hand_pose=fill(p.hand_pose),
                   anchor=fill(p.anchor))


def teacher_log_scale(hand_model: HandModel, teacher: torch.Tensor,
                      confidence: torch.Tensor, betas: torch.Tensor) -> torch.Tensor | None:
    """() log of the size that makes the hand model's wrist-to-middle-MCP length the
    teacher's (its confidence-weighted median over the track's frames), or None without
    teacher 3D."""
    length = (teacher[:, MIDDLE_MCP] - teacher[:, WRIST]).norm(dim=-1)
    trust = confidence[:, [WRIST, MIDDLE_MCP]].min(-1).values
    usable = torch.isfinite(length) & (trust > 0)
    if not usable.any():
        return None
    with torch.no_grad():
        rest = hand_model.joints_only(torch.zeros(1, 3), torch.zeros(1, 15, 3), betas[None])[0]
    model_length = (rest[MIDDLE_MCP] - rest[WRIST]).norm()
    return (_weighted_median(length[usable], trust[usable]) / model_length).log()


def _weighted_median(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(values)
    cumulative = torch.cumsum(weights[order], 0)
    return values[order][torch.searchsorted(cumulative, cumulative[-1] / 2).clamp_max(
        len(values) - 1)]


def track_start(hand_model: HandModel, obs: TrackObservations, placed: torch.Tensor,
                network: FitParameters | None, network_scale: torch.Tensor | None,
                limit_frames: torch.Tensor, weights: FitWeights
                ) -> tuple[FitParameters, torch.Tensor] | None:
    """Where a track's fit starts, and the log size it is pulled to.

    The size comes from the teacher's metric 3D (else the network's median size); the shape
    starts at the mean. Per frame the start is the network's prediction (moved to the track's
    size along its viewing ray, which keeps its projection) or the teacher-based one, whichever
    explains the frame's evidence better (``sequence.better_start``); frames without either are
    interpolated. None when no frame has a start.
    """
    betas = torch.zeros(hand_model.n_shape, dtype=obs.keypoints.dtype)
    log_scale = teacher_log_scale(hand_model, obs.teacher, obs.teacher_confidence, betas)
    if log_scale is None:
        usable = network_scale[torch.isfinite(network_scale)] if network_scale is not None \
            else torch.zeros(0)
        log_scale = usable.abs().median().log() if len(usable) else torch.tensor(0.0)
    start = teacher_start(hand_model, placed, betas, log_scale)
    if network is not None:
        moved = network.anchor * (log_scale.exp() / network_scale.abs().clamp_min(1e-6))[:, None]
        ours = FitParameters(network.global_orient, network.hand_pose, moved, betas, log_scale)
        start = better_start(hand_model, ours, start, obs, limit_frames, weights)
    known = torch.isfinite(start.anchor).all(-1) & torch.isfinite(start.hand_pose).all(-1).all(-1)
    if not known.any():
        return None
    return fill_gaps(start, known, obs.times), log_scale
