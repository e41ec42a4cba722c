"""A slot's frames cut into tracks, and what a track's fit starts from: gaps filled, and the
track's size from the teacher's metric 3D."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..hand.base import HandModel
from ..tracking import box_iou
from .gaps import bridge
from .sequence import (
    Carry,
    FitParameters,
    FitResult,
    FitWeights,
    TrackObservations,
    hand_size_m,
)
from .solve import fit_tracks
from .start import better_start, data_terms, teacher_start


def track_spans(present: np.ndarray, times: np.ndarray, max_gap_s: float,
                blocked: np.ndarray | None = None, cuts: np.ndarray | None = None
                ) -> list[tuple[int, int]]:
    """(start, stop) frame ranges of the tracks in one slot's ``present`` (T,): runs of
    detections whose gaps last at most ``max_gap_s`` and hold no ``blocked`` frame (where
    filling would put a second hand on one the other slot already has); a detected frame
    marked in ``cuts`` (``cuts.evidence_cuts``) starts a new track. Each span starts and
    ends detected.

    >>> track_spans(np.array([0, 1, 1, 0, 1, 0, 0, 0, 1], bool), np.arange(9) / 10, 0.25)
    [(1, 5), (8, 9)]
    >>> blocked = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0], bool)
    >>> track_spans(np.array([0, 1, 1, 0, 1, 0, 0, 0, 1], bool), np.arange(9) / 10, 0.25,
    ...             blocked)
    [(1, 3), (4, 5), (8, 9)]
    >>> track_spans(np.ones(6, bool), np.arange(6) / 10, 0.25,
    ...             cuts=np.array([0, 0, 0, 1, 0, 0], bool))
    [(0, 3), (3, 6)]
    """
    frames = np.flatnonzero(present)
    if not len(frames):
        return []
    blocked_before = np.cumsum(blocked) if blocked is not None else np.zeros(len(present))
    gap_blocked = blocked_before[frames[1:] - 1] - blocked_before[frames[:-1]] > 0
    cut = cuts[frames[1:]] if cuts is not None else np.zeros(len(frames) - 1, bool)
    breaks = np.flatnonzero((np.diff(times[frames]) > max_gap_s + 1e-9) | gap_blocked | cut)
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
    """Per-frame parameters carried over the frames where ``known`` (T,) is False
    (``gaps.bridge``: rotations slerped, positions in a straight line). Only a start, which
    the fit then solves. Needs at least one known frame."""
    over = bridge(known, times.to(p.anchor.dtype))
    return replace(p, global_orient=over.rotations(p.global_orient),
                   hand_pose=over.rotations(p.hand_pose), anchor=over.linear(p.anchor))


def teacher_hand_size(teacher: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor | None:
    """() the teacher's hand size over the track (``sequence.hand_size_m``, metres; its
    confidence-weighted median over frames), or None without teacher 3D."""
    size = hand_size_m(teacher)
    trust = confidence.mean(-1)
    usable = torch.isfinite(size) & (trust > 0)
    if not usable.any():
        return None
    return _weighted_median(size[usable], trust[usable])


def model_hand_size(hand_model: HandModel, betas: torch.Tensor) -> torch.Tensor:
    """() the hand model's size (``sequence.hand_size_m``) at scale 1 with shape ``betas``."""
    with torch.no_grad():
        rest = hand_model.joints_only(torch.zeros(1, 3), torch.zeros(1, 15, 3), betas[None])
    return hand_size_m(rest)[0]


def _weighted_median(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(values)
    cumulative = torch.cumsum(weights[order], 0)
    return values[order][torch.searchsorted(cumulative, cumulative[-1] / 2).clamp_max(
        len(values) - 1)]


def track_starts(hand_model: HandModel, obs: TrackObservations, placed: torch.Tensor,
                 network: FitParameters | None, network_scale: torch.Tensor | None,
                 limit_frames: torch.Tensor, weights: FitWeights
                 ) -> tuple[list[FitParameters], torch.Tensor] | None:
    """Where a track's fit may start, best first, and the log hand size (metres) it is
    pulled to.

    The size comes from the teacher's metric 3D (else the network's median size); the shape
    starts at the mean. The first start is the network's prediction (moved to the track's
    size along its viewing ray, which keeps its projection) or the teacher-based one,
    whichever explains the track's evidence better (``start.better_start``); where that is
    the network's, the teacher-based one follows as a second candidate (``solve_track`` fits
    both and keeps the better fit). Frames without a start are interpolated. None when no
    frame has a start.
    """
    betas = torch.zeros(hand_model.n_shape, dtype=obs.keypoints.dtype)
    unit = model_hand_size(hand_model, betas)
    length = teacher_hand_size(obs.teacher, obs.teacher_confidence)
    if length is not None:
        log_scale = (length / unit).log()
    else:
        usable = network_scale[torch.isfinite(network_scale)] if network_scale is not None \
            else torch.zeros(0)
        log_scale = usable.abs().median().log() if len(usable) else torch.tensor(0.0)
    teacher = teacher_start(hand_model, placed, betas, log_scale, limit_frames)
    starts = [teacher]
    if network is not None:
        moved = network.anchor * (log_scale.exp() / network_scale.abs().clamp_min(1e-6))[:, None]
        ours = FitParameters(network.global_orient, network.hand_pose, moved, betas, log_scale)
        chosen, network_first = better_start(hand_model, ours, teacher, obs, limit_frames,
                                             weights)
        starts = [chosen, teacher] if network_first else [chosen]
    filled = [_filled(start, obs.times) for start in starts]
    if filled[0] is None:
        return None
    return [start for start in filled if start is not None], log_scale + unit.log()


def _filled(start: FitParameters, times: torch.Tensor) -> FitParameters | None:
    known = torch.isfinite(start.anchor).all(-1) & torch.isfinite(start.hand_pose).all(-1).all(-1)
    return fill_gaps(start, known, times) if known.any() else None


def fit_score(result: FitResult, obs: TrackObservations, limit_frames: torch.Tensor,
              weights: FitWeights) -> float:
    """How well a fitted track explains its evidence: the median over its detected frames of
    the start choice's data terms (``start.data_terms``) at the solution, a frame without
    teacher 3D scored on its 2D and joint angles."""
    score = data_terms(result.projected, result.joints, result.parameters.hand_pose, obs,
                       limit_frames, weights, no_teacher=0.0)
    seen = obs.present & torch.isfinite(score)
    return float(score[seen].median()) if seen.any() else float("inf")


@dataclass
class TrackProblem:
    """One track to solve (``solve_tracks``): its observations, the teacher placed in its
    camera, the network's start and size (None: the teacher's start alone) and what a
    previous window of the same track carries on (its parameters and size prior)."""

    obs: TrackObservations
    placed: torch.Tensor
    network: FitParameters | None = None
    network_scale: torch.Tensor | None = None
    carried: tuple[FitParameters, torch.Tensor] | None = None


def solve_tracks(hand_model: HandModel, problems: list[TrackProblem],
                 limit_frames: torch.Tensor, weights: FitWeights, steps: int, lr: float,
                 carry: Carry = "none", progress: Callable[[float], None] | None = None
                 ) -> list[tuple[FitResult, torch.Tensor] | None]:
    """Start (``track_starts``) and fit (``solve.fit_tracks``, every start of every track in
    batches) each track; returns per track the result and the log size it was pulled to, or
    None when no frame has a start. A problem's ``carried`` (a previous window of the same
    track) keeps its shape, size and skeleton.

    Where the network's start won the start choice, the teacher's is fitted too and the fit
    that explains the evidence better is kept: a start that scores better than another may
    still lead the fit into a worse minimum (on the coffee clip's mug hand, a network start
    ended 36 px from its detections where the teacher's ended 1.8 px from them)."""
    runs, owners, priors = [], [], {}
    for index, problem in enumerate(problems):
        begun = track_starts(hand_model, problem.obs, problem.placed, problem.network,
                             problem.network_scale, limit_frames, weights)
        if begun is None:
            continue
        starts, priors[index] = begun
        if problem.carried is not None:
            before, priors[index] = problem.carried
            starts = [replace(start, betas=before.betas, log_scale=before.log_scale,
                              skeleton=before.skeleton) for start in starts]
        runs += [(problem.obs, start) for start in starts]
        owners += [index] * len(starts)
    results = fit_tracks(hand_model, runs, limit_frames, weights,
                         [priors[i] for i in owners], steps, lr, carry, progress)
    best: list[tuple[FitResult, torch.Tensor] | None] = [None] * len(problems)
    scores: dict[int, float] = {}
    for index, result in zip(owners, results, strict=True):
        score = fit_score(result, problems[index].obs, limit_frames, weights)
        if index not in scores or score < scores[index]:
            scores[index], best[index] = score, (result, priors[index])
    return best


def solve_track(hand_model: HandModel, obs: TrackObservations, placed: torch.Tensor,
                network: FitParameters | None, network_scale: torch.Tensor | None,
                limit_frames: torch.Tensor, weights: FitWeights, steps: int, lr: float,
                carried: tuple[FitParameters, torch.Tensor] | None = None,
                carry: Carry = "none") -> tuple[FitResult, torch.Tensor] | None:
    """``solve_tracks`` for one track."""
    return solve_tracks(hand_model, [TrackProblem(obs, placed, network, network_scale,
                                                  carried)],
                        limit_frames, weights, steps, lr, carry)[0]
