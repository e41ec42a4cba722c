"""Solving sequence fits (``sequence.py``): many tracks at once, as one padded batch.

A video's tracks are independent problems, but solving them one after another pays every
Adam step's fixed cost (a few hundred small torch operations, forward and backward) once per
track: on a two-hand clip with 26 short tracks that was most of the fit's time. Here B
tracks are padded to T frames and solved in one optimisation whose objective is the sum of
the tracks' own objectives. Adam's update is elementwise and no parameter is shared between
tracks, so each track gets the steps it would get alone; the padded frames carry no term
and no gradient. Tracks of very different lengths go to different batches
(``length_batches``), so that little of a batch is padding.

Shapes: ``TrackBatch`` holds (B, T, ...) tensors; per-track parameters are (B, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from ..geometry import project
from ..hand.base import HandModel
from ..hand.limits import joint_limit_penalty, limits_deg
from . import terms
from .gaps import Bridge, bridge
from .sequence import (
    MIN_DEPTH_M,
    Carry,
    FitParameters,
    FitResult,
    FitWeights,
    TrackObservations,
    ViewObservations,
    hand_size_m,
    pose_hand,
    pose_joints,
    project_in_front,
    skeleton_prior,
    teacher_smoothing,
    view_reprojection,
)

# a batch holds at most this share of padded frames, and at most this many frames in all
PADDING_SHARE = 0.25
MAX_BATCH_FRAMES = 8192
DEFAULT_WEIGHTS = FitWeights()


@dataclass
class TrackBatch:
    """B tracks' observations padded to T frames.

    Attributes:
        obs: the tracks' ``TrackObservations`` stacked: keypoints (B, T, 21, 2), weights
            (B, T, 21), teacher (B, T, 21, 3), teacher_confidence (B, T, 21), hand_size,
            times and present (B, T), K (B, 1, 3, 3); a padded frame has no detection, no
            teacher and a time one median step after the one before. ``views`` only when
            B is 1 (a rig's track), their tensors given a leading 1.
        lengths: (B,) each track's own frames; frames: (B, T) bool, True on them.
        smoothing: (B, T, T) each track's ``teacher_smoothing``.
    """

    obs: TrackObservations
    lengths: torch.Tensor
    frames: torch.Tensor
    smoothing: torch.Tensor


def stack_observations(tracks: list[TrackObservations]) -> TrackBatch:
    """The tracks as one ``TrackBatch`` (views only for a single track)."""
    if len(tracks) > 1 and any(obs.views for obs in tracks):
        raise ValueError("a rig's track (with other views) is solved alone")
    T = max(len(obs) for obs in tracks)
    lengths = torch.tensor([len(obs) for obs in tracks], device=tracks[0].K.device)
    frames = torch.arange(T, device=lengths.device)[None] < lengths[:, None]

    def stacked(name: str, fill: float) -> torch.Tensor:
        return torch.stack([_padded(getattr(obs, name), T, fill) for obs in tracks])

    obs = TrackObservations(
        keypoints=stacked("keypoints", 0.0), weights=stacked("weights", 0.0),
        teacher=stacked("teacher", 0.0), teacher_confidence=stacked("teacher_confidence", 0.0),
        hand_size=stacked("hand_size", 1.0),
        times=torch.stack([_padded_times(obs.times, T) for obs in tracks]),
        K=torch.stack([obs.K for obs in tracks])[:, None],
        present=stacked("present", False),
        network=_stacked_network(tracks, T, "network", float("nan")),
        network_confidence=_stacked_network(tracks, T, "network_confidence", 0.0),
        views=[_leading_one(view) for view in tracks[0].views] if len(tracks) == 1 else [])
    smoothing = torch.stack([_padded_square(teacher_smoothing(obs), T) for obs in tracks])
    return TrackBatch(obs, lengths, frames, smoothing)


def _stacked_network(tracks: list[TrackObservations], T: int, name: str, fill: float
                     ) -> torch.Tensor | None:
    """The tracks' network evidence stacked (B, T, ...), a track without it all ``fill``;
    None when no track has any."""
    if all(obs.network is None for obs in tracks):
        return None
    shape = {"network": (21, 3), "network_confidence": ()}[name]
    return torch.stack([
        _padded(getattr(obs, name), T, fill) if obs.network is not None
        else obs.keypoints.new_full((T, *shape), fill) for obs in tracks])


def _padded(values: torch.Tensor, T: int, fill) -> torch.Tensor:
    pad = torch.full((T - len(values), *values.shape[1:]), fill, dtype=values.dtype,
                     device=values.device)
    return torch.cat([values, pad])


def _padded_times(times: torch.Tensor, T: int) -> torch.Tensor:
    """Times continued a median step at a time: the track's lower median step stays the
    median with them (``terms._per_frame_rates``), so its rates are those it has alone."""
    steps = torch.diff(times)
    step = steps.median() if len(steps) else torch.ones((), dtype=times.dtype)
    extra = times[-1] + step * torch.arange(1, T - len(times) + 1, dtype=times.dtype,
                                            device=times.device)
    return torch.cat([times, extra])


def _padded_square(kernel: torch.Tensor, T: int) -> torch.Tensor:
    out = kernel.new_zeros(T, T)
    out[: len(kernel), : len(kernel)] = kernel
    return out


def _leading_one(view: ViewObservations) -> ViewObservations:
    per_frame = {"keypoints", "weights", "hand_size", "present"}
    return replace(view, **{f.name: getattr(view, f.name)[None] for f in fields(view)
                            if f.name in per_frame})


def stack_parameters(starts: list[FitParameters], T: int) -> FitParameters:
    """Per-frame parameters (B, T, ...) padded with each track's last frame (finite, and
    left where they are: no term reaches them); per-track ones (B, ...)."""
    def frames(name: str) -> torch.Tensor:
        return torch.stack([_padded_last(getattr(p, name), T) for p in starts])

    skeletons = [p.skeleton for p in starts]
    return FitParameters(
        global_orient=frames("global_orient"), hand_pose=frames("hand_pose"),
        anchor=frames("anchor"), betas=torch.stack([p.betas for p in starts]),
        log_scale=torch.stack([p.log_scale for p in starts]),
        skeleton=None if skeletons[0] is None else torch.stack(skeletons))


def _padded_last(values: torch.Tensor, T: int) -> torch.Tensor:
    return torch.cat([values, values[-1:].expand(T - len(values), *values.shape[1:])])


def unstack_parameters(p: FitParameters, lengths: list[int]) -> list[FitParameters]:
    """Each track's own parameters out of a batch's."""
    return [FitParameters(p.global_orient[b, :n], p.hand_pose[b, :n], p.anchor[b, :n],
                          p.betas[b], p.log_scale[b],
                          None if p.skeleton is None else p.skeleton[b])
            for b, n in enumerate(lengths)]


def frame_terms(hand_model: HandModel, p: FitParameters, batch: TrackBatch,
                limit_frames: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every per-frame term (B, T) of the objective at the batch's parameters ``p``."""
    obs = batch.obs
    B, T = batch.frames.shape
    joints = pose_joints(hand_model, p)
    limits = torch.tensor(np.radians(limits_deg()), dtype=joints.dtype, device=joints.device)
    rotations = torch.cat([p.global_orient[..., None, :], p.hand_pose], dim=-2)
    network = {} if obs.network is None else {
        "network_3d": terms.network_3d(joints, obs.network, obs.network_confidence)}
    return network | {
        "reprojection": terms.reprojection(project_in_front(joints, obs.K), obs.keypoints,
                                           obs.weights, obs.hand_size),
        "teacher_3d": terms.teacher_3d(joints, obs.teacher, obs.teacher_confidence,
                                       batch.smoothing),
        "joint_angle": joint_limit_penalty(p.hand_pose.reshape(B * T, 15, 3), limit_frames,
                                           limits).reshape(B, T),
        "rotation_acceleration": terms.rotation_acceleration(rotations, obs.times),
        "translation_acceleration": terms.translation_acceleration(p.anchor, obs.times,
                                                                   batch.frames),
        "log_size": hand_size_m(joints).log(),
    }


def objective(hand_model: HandModel, p: FitParameters, batch: TrackBatch,
              limit_frames: torch.Tensor, weights: FitWeights, size_prior: torch.Tensor
              ) -> torch.Tensor:
    """(B,) each track's weighted sum: data terms averaged with each frame's evidence, priors
    averaged over the track's frames. ``size_prior`` (B,) is the log hand size
    (``hand_size_m``) each track's hand is pulled to."""
    per_frame = frame_terms(hand_model, p, batch, limit_frames)
    obs, frames = batch.obs, batch.frames.to(p.anchor.dtype)
    # an acceleration needs the frames either side: none at a track's last frame
    interior = (torch.arange(frames.shape[1], device=frames.device)[None]
                < batch.lengths[:, None] - 1).to(frames)
    evidence = terms.frame_factor(obs.weights, obs.present)
    teacher = obs.teacher_confidence.mean(-1)
    total = (weights.reprojection * _every_view(hand_model, p, obs,
                                                _weighted(per_frame["reprojection"], evidence))
             + weights.teacher_3d * _weighted(per_frame["teacher_3d"], teacher)
             + weights.shape * (p.betas**2).mean(-1)
             + weights.network_3d * _network_term(per_frame, obs)
             + weights.skeleton * skeleton_prior(p)
             + weights.teacher_size * (_weighted(per_frame["log_size"], frames)
                                       - size_prior) ** 2)
    for name, where in (("joint_angle", frames), ("rotation_acceleration", interior),
                        ("translation_acceleration", interior)):
        total = total + getattr(weights, name) * (per_frame[name] * where).sum(-1) \
            / batch.lengths.to(frames)
    return total


def _network_term(per_frame: dict[str, torch.Tensor], obs: TrackObservations) -> torch.Tensor:
    """(B,) the network term averaged over the frames the network has a prediction for (its
    per-frame confidence is already in the term, so a little-trusted network counts little
    however many frames it covers)."""
    if "network_3d" not in per_frame:
        return per_frame["reprojection"].new_zeros(per_frame["reprojection"].shape[:-1])
    return _weighted(per_frame["network_3d"], (obs.network_confidence > 0).to(obs.weights))


def _every_view(hand_model: HandModel, p: FitParameters, obs: TrackObservations,
                own: torch.Tensor) -> torch.Tensor:
    """The reprojection term averaged over the fit's camera (``own``) and a rig's others."""
    if not obs.views:
        return own
    joints = pose_joints(hand_model, p)
    total = own
    for view in obs.views:
        evidence = terms.frame_factor(view.weights, view.present)
        total = total + _weighted(view_reprojection(joints, view), evidence)
    return total / (1 + len(obs.views))


def _weighted(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum(-1) / weights.sum(-1).clamp_min(1e-6)


def length_batches(lengths: list[int], padding: float = PADDING_SHARE,
                   max_frames: int = MAX_BATCH_FRAMES) -> list[list[int]]:
    """Tracks (their indices) grouped for solving: longest first, each batch as long as its
    first track, taking the next while at most ``padding`` of it would be padding and it
    holds at most ``max_frames`` frames.

    >>> length_batches([10, 300, 280, 12, 11, 290])
    [[1, 5, 2], [3, 4, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches:
            batch = batches[-1]
            T, real = lengths[batch[0]], sum(lengths[j] for j in batch) + lengths[i]
            size = T * (len(batch) + 1)
            if size <= max_frames and size - real <= padding * size:
                batch.append(i)
                continue
        batches.append([i])
    return batches


def fit_tracks(hand_model: HandModel, problems: list[tuple[TrackObservations, FitParameters]],
               limit_frames: torch.Tensor, weights: FitWeights = DEFAULT_WEIGHTS,
               size_priors: list[torch.Tensor | None] | None = None, steps: int = 200,
               lr: float = 0.02, carry: Carry = "none",
               progress: Callable[[float], None] | None = None) -> list[FitResult]:
    """Solve each (observations, start) track, in batches of similar length
    (``length_batches``); see ``fit_track`` for one. ``progress`` gets the share of the
    tracks' frames solved after each batch."""
    priors = size_priors or [None] * len(problems)
    results: list[FitResult | None] = [None] * len(problems)
    lengths = [len(obs) for obs, _ in problems]
    done = 0
    for batch in length_batches(lengths):
        solved = _fit_batch(hand_model, [problems[i] for i in batch],
                            [priors[i] for i in batch], limit_frames, weights, steps, lr,
                            carry)
        for i, result in zip(batch, solved, strict=True):
            results[i] = result
        done += sum(lengths[i] for i in batch)
        if progress:
            progress(done / sum(lengths))
    return results


def fit_track(hand_model: HandModel, obs: TrackObservations, start: FitParameters,
              limit_frames: torch.Tensor, weights: FitWeights = DEFAULT_WEIGHTS,
              size_prior: torch.Tensor | None = None, steps: int = 200, lr: float = 0.02,
              carry: Carry = "none") -> FitResult:
    """Solve one track from ``start`` with Adam (rotations, shape, skeleton and log depth at
    ``lr``, the anchor's viewing ray at a tenth of it); ``size_prior`` is the log hand size
    (``hand_size_m``) the track is pulled to (default: the start's). The skeleton is solved
    when ``weights.skeleton`` is above 0, from the start's (or the model's own). ``carry``
    holds the frames no view sees on the bridge between the seen ones at every step
    (``gaps.py``: "line" or "cubic" for the anchor's ray and depth; "none" leaves them to the
    temporal terms)."""
    return fit_tracks(hand_model, [(obs, start)], limit_frames, weights, [size_prior], steps,
                      lr, carry)[0]


def _fit_batch(hand_model, problems, priors, limit_frames, weights, steps, lr, carry
               ) -> list[FitResult]:
    tracks = [obs for obs, _ in problems]
    batch = stack_observations(tracks)
    lengths = batch.lengths.tolist()
    starts = [_with_skeleton(start.detach(), hand_model, weights) for _, start in problems]
    with torch.no_grad():
        size_prior = torch.stack([
            prior if prior is not None
            else hand_size_m(pose_joints(hand_model, start)).log().mean()
            for prior, start in zip(priors, starts, strict=True)])
    p = stack_parameters(starts, batch.frames.shape[1])
    solved = [p.global_orient, p.hand_pose, p.betas, p.log_scale]
    if p.skeleton is not None:
        solved.append(p.skeleton)
    for tensor in solved:
        tensor.requires_grad_(True)
    # the anchor as its viewing ray and log depth: a start at the wrong depth (the network's,
    # off by a factor) moves in proportion, and the ray keeps the hand where it is seen
    ray = (p.anchor[..., :2] / p.anchor[..., 2:]).clone().requires_grad_(True)
    log_depth = p.anchor[..., 2].clamp_min(MIN_DEPTH_M).log().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([
        {"params": [*solved, log_depth], "lr": lr},
        {"params": [ray], "lr": lr / 10}])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1),
                                                          eta_min=lr / 20)
    bridges = _bridges(tracks, carry, weights)
    for _ in range(steps):
        p.anchor = _anchor(ray, log_depth)
        loss = objective(hand_model, p, batch, limit_frames, weights, size_prior).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        for b, (over, unseen, unposed) in bridges.items():
            n = lengths[b]
            _carry_unseen(over, carry, unseen, unposed, p.global_orient[b, :n],
                          p.hand_pose[b, :n], ray[b, :n], log_depth[b, :n])
    p.anchor = _anchor(ray, log_depth)
    return [_result(hand_model, params, obs) for params, obs in
            zip(unstack_parameters(p.detach(), lengths), tracks, strict=True)]


def _with_skeleton(p: FitParameters, hand_model: HandModel, weights: FitWeights
                   ) -> FitParameters:
    """The start with a skeleton to solve (zeros: the model's own) when the skeleton prior
    is on, without one when it is off."""
    if weights.skeleton > 0 and p.skeleton is None:
        return replace(p, skeleton=torch.zeros(len(hand_model.parents), 3, dtype=p.anchor.dtype,
                                               device=p.anchor.device))
    if weights.skeleton == 0:
        return replace(p, skeleton=None)
    return p


def _result(hand_model: HandModel, p: FitParameters, obs: TrackObservations) -> FitResult:
    """One track's result at its solved parameters."""
    with torch.no_grad():
        vertices, joints = pose_hand(hand_model, p)
        residual = terms.teacher_3d(joints, obs.teacher, obs.teacher_confidence,
                                    teacher_smoothing(obs))
        measured = obs.teacher_confidence.clamp_min(0).sum(-1) > terms.MIN_TEACHER_CONFIDENCE
        residual = torch.where(measured, residual, torch.full_like(residual, float("nan")))
        projected = project(joints, obs.K.expand(len(obs), 3, 3))
    return FitResult(p, joints, vertices, projected, residual, ~obs.present)


def _bridges(tracks: list[TrackObservations], carry: Carry, weights: FitWeights
             ) -> dict[int, tuple[Bridge, torch.Tensor, torch.Tensor]]:
    """Per track with frames no view sees (and ``carry`` not "none"): its bridge over them,
    those frames, and those of them without evidence of the hand's articulation."""
    out = {}
    if carry == "none":
        return out
    for b, obs in enumerate(tracks):
        unseen = ~seen_frames(obs)
        if unseen.any() and not unseen.all():
            out[b] = (bridge(~unseen, obs.times), unseen,
                      unseen & ~articulated_frames(obs, weights))
    return out


def articulated_frames(obs: TrackObservations, weights: FitWeights) -> torch.Tensor:
    """(T,) frames with evidence of the hand's articulation that needs no 2D, in a term that
    counts: the detector's 3D (of a detection left out as covered, ``fit.covered_teacher``),
    or the network's joints where it is trusted."""
    articulated = torch.zeros_like(obs.present)
    if weights.teacher_3d > 0:
        articulated |= obs.teacher_confidence.clamp_min(0).sum(-1) \
            > terms.MIN_TEACHER_CONFIDENCE
    if weights.network_3d > 0 and obs.network_confidence is not None:
        articulated |= obs.network_confidence > 0
    return articulated


def seen_frames(obs: TrackObservations) -> torch.Tensor:
    """(T,) frames with a detection in the fit's camera or in any other view of a rig."""
    seen = obs.present.clone()
    for view in obs.views:
        seen |= view.present
    return seen


def _carry_unseen(over: Bridge, carry: Carry, unseen: torch.Tensor, unposed: torch.Tensor,
                  *rows: torch.Tensor) -> None:
    """Put the unseen frames of the per-frame parameters back on the bridge between the
    seen frames either side (``gaps.py``: rotations slerped, the anchor's ray and log depth
    on a straight line or on the cubic that keeps each end's velocity): with no data term
    there, Adam's steps, each as large for a weak gradient as for a strong one, can walk
    them away. The pose only where ``unposed``: a frame with 3D evidence of its
    articulation (``articulated_frames``) keeps the pose that evidence gives it."""
    along = over.linear if carry == "line" else over.cubic
    global_orient, hand_pose, *positions = rows
    with torch.no_grad():
        global_orient[unseen] = over.rotations(global_orient)[unseen]
        hand_pose[unposed] = over.rotations(hand_pose)[unposed]
        for values in positions:
            values[unseen] = along(values)[unseen]


def _anchor(ray: torch.Tensor, log_depth: torch.Tensor) -> torch.Tensor:
    depth = log_depth.exp()[..., None]
    return torch.cat([ray * depth, depth], dim=-1)
