"""The sequence fit: one tracked hand over T consecutive frames, solved together.

Unknowns: per frame the global rotation, the 15 joint rotations and the anchor (the middle
MCP's camera position); per track one shape (S2HAND(V)'s shape consistency), one size and one
skeleton (offsets of the model's rest joints: the person's proportions, and where the
detector's keypoints sit on a hand, which a hand model's joints need not match).
Evidence and priors (``terms.py``), each weighted by ``FitWeights``:

- robust, confidence-weighted reprojection of the joints onto the 2D detections (frame K);
- agreement with the teacher's 3D joints, root-relative and scale-free;
- the joint-angle limits, shape and skeleton priors and the teacher's metric size for the
  track's size;
- S2HAND(V)'s quaternion motion term and the anchor's acceleration, from the timestamps.

Frames without a detection (inside a track) have no data terms: the temporal terms fill them.
Everything is batched over the frames, on whatever device the observations are on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np
import torch

from ..detectors.schema import BONES
from ..geometry import project
from ..hand.base import HandModel
from ..hand.limits import joint_limit_penalty, limits_deg
from ..network.s2hand import ANCHOR_JOINT, place_hand
from . import terms
from .gaps import Bridge, bridge

_PARENTS = [p for p, _ in BONES]
_CHILDREN = [c for _, c in BONES]
MIN_DEPTH_M = 0.02
# how slowly the teacher's 3D frame may turn against the camera (terms.teacher_3d)
TEACHER_FRAME_SMOOTHING_S = 0.25
# the skeleton prior's unit: a rest joint this far (metres, on the unit-scale hand) from the
# model's costs the prior's weight
SKELETON_SCALE_M = 0.01


@dataclass
class ViewObservations:
    """The same track seen by another calibrated camera of a rig (``models/rig``): its
    evidence over the track's T frames, and where that camera is from the fit's."""

    keypoints: torch.Tensor  # (T, 21, 2) undistorted detections, that camera's pixels
    weights: torch.Tensor  # (T, 21) joint weights; 0 where unobserved
    hand_size: torch.Tensor  # (T,) detected hand size in pixels
    present: torch.Tensor  # (T,) bool
    R: torch.Tensor  # (3, 3) x_view = R x_fit + t (for a left hand, R includes the mirror)
    t: torch.Tensor  # (3,) metres
    K: torch.Tensor  # (3, 3)

    def joints_here(self, joints: torch.Tensor) -> torch.Tensor:
        """(T, 21, 3) fit-camera joints in this camera's frame."""
        return joints @ self.R.T + self.t


@dataclass
class TrackObservations:
    """One hand track's evidence over T frames, in the fit's camera (a left hand's is the
    mirror image, with ``K @ diag(-1, 1, 1)``, so the right-hand model fits it)."""

    keypoints: torch.Tensor  # (T, 21, 2) detections, frame pixels (anything where unobserved)
    weights: torch.Tensor  # (T, 21) joint weights of the weight stage; 0 where unobserved
    teacher: torch.Tensor  # (T, 21, 3) the detector's 3D (hand-centred), right-hand
    teacher_confidence: torch.Tensor  # (T, 21), 0 where there is no teacher 3D
    hand_size: torch.Tensor  # (T,) detected hand size in pixels
    times: torch.Tensor  # (T,) seconds
    K: torch.Tensor  # (3, 3)
    present: torch.Tensor  # (T,) bool: frames with a detection (however unsure)
    # a rig's other cameras; the reprojection term is then the mean over every camera's
    views: list[ViewObservations] = field(default_factory=list)

    def __len__(self) -> int:
        return self.keypoints.shape[0]


@dataclass
class FitParameters:
    global_orient: torch.Tensor  # (T, 3) axis-angle
    hand_pose: torch.Tensor  # (T, 15, 3) axis-angle
    anchor: torch.Tensor  # (T, 3) metres, camera frame
    betas: torch.Tensor  # (S,) one shape for the track
    log_scale: torch.Tensor  # () one size for the track
    # (K, 3) one skeleton for the track: offsets of the model's rest joints (metres at unit
    # scale, the model's joint order); None: the model's own
    skeleton: torch.Tensor | None = None

    def detach(self) -> FitParameters:
        return FitParameters(*(None if getattr(self, f.name) is None
                               else getattr(self, f.name).detach().clone() for f in fields(self)))

    def joint_offsets(self) -> torch.Tensor | None:
        """(T, K, 3) the track's skeleton for every frame, as the hand model takes it."""
        if self.skeleton is None:
            return None
        return self.skeleton.expand(self.global_orient.shape[0], -1, -1)

    def select(self, frames: torch.Tensor, other: FitParameters) -> FitParameters:
        """Per frame, this start where ``frames`` (T,) is True, else ``other``'s (the track's
        shape and size are this one's)."""
        def pick(a, b):
            return torch.where(frames.view(-1, *[1] * (a.dim() - 1)), a, b)
        return replace(self, global_orient=pick(self.global_orient, other.global_orient),
                       hand_pose=pick(self.hand_pose, other.hand_pose),
                       anchor=pick(self.anchor, other.anchor))


@dataclass(frozen=True)
class FitWeights:
    """Weights of the fit's terms (the config's ``reconstruct.fit.weights``); 0 = off."""

    reprojection: float = 1.0
    teacher_3d: float = 1.0
    joint_angle: float = 1.0
    shape: float = 1e-3
    teacher_size: float = 1.0
    rotation_acceleration: float = 1.0
    translation_acceleration: float = 10.0
    skeleton: float = 0.01  # 0: the model's own skeleton, not solved


@dataclass
class FitResult:
    parameters: FitParameters
    joints: torch.Tensor  # (T, 21, 3) camera frame, metres
    vertices: torch.Tensor  # (T, V, 3)
    projected: torch.Tensor  # (T, 21, 2) frame pixels
    teacher_residual: torch.Tensor  # (T,) the teacher-3D term at the solution; NaN: no teacher
    interpolated: torch.Tensor  # (T,) bool: frames without a detection


def pose_hand(hand_model: HandModel, p: FitParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices (T, V, 3) and joints (T, 21, 3) of the parameters, in the camera frame."""
    frames = p.global_orient.shape[0]
    betas = p.betas.expand(frames, -1)
    scale = p.log_scale.exp().expand(frames)
    return place_hand(hand_model, p.global_orient, p.hand_pose, betas, p.anchor, scale,
                      p.joint_offsets())


def pose_joints(hand_model: HandModel, p: FitParameters) -> torch.Tensor:
    """(T, 21, 3) the joints of ``pose_hand`` without the mesh (what the fit's steps need)."""
    frames = p.global_orient.shape[0]
    joints = hand_model.joints_only(p.global_orient, p.hand_pose, p.betas.expand(frames, -1),
                                    p.joint_offsets())
    origin = joints[:, ANCHOR_JOINT : ANCHOR_JOINT + 1]
    return p.anchor[:, None] + p.log_scale.exp() * (joints - origin)


def teacher_smoothing(obs: TrackObservations) -> torch.Tensor:
    """(T, T) the track's weights for smoothing the teacher's frame (``terms.teacher_3d``)."""
    return terms.teacher_smoothing(obs.times, TEACHER_FRAME_SMOOTHING_S, obs.teacher_confidence)


def frame_terms(hand_model: HandModel, p: FitParameters, obs: TrackObservations,
                limit_frames: torch.Tensor, smoothing: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
    """Every per-frame term (T,) of the objective at ``p``; ``smoothing``: the track's
    ``teacher_smoothing`` where the caller has it already."""
    joints = pose_joints(hand_model, p)
    limits = torch.tensor(np.radians(limits_deg()), dtype=joints.dtype, device=joints.device)
    rotations = torch.cat([p.global_orient[:, None], p.hand_pose], dim=1)
    return {
        "reprojection": terms.reprojection(project_in_front(joints, obs.K), obs.keypoints,
                                           obs.weights, obs.hand_size),
        "teacher_3d": terms.teacher_3d(joints, obs.teacher, obs.teacher_confidence,
                                       teacher_smoothing(obs) if smoothing is None
                                       else smoothing),
        "joint_angle": joint_limit_penalty(p.hand_pose, limit_frames, limits),
        "rotation_acceleration": terms.rotation_acceleration(rotations, obs.times),
        "translation_acceleration": terms.translation_acceleration(p.anchor, obs.times),
        "log_size": hand_size_m(joints).log(),
    }


def hand_size_m(joints: torch.Tensor) -> torch.Tensor:
    """(T,) the mean length of the 20 bones, metres: the hand's size as the teacher's metric
    3D gives it. All bones, not one: the hand model's proportions are not the detector's
    (given MediaPipe's wrist-to-middle-MCP length, the embedded hand came out about 15%
    larger overall on the stereo pair), and matching a single bone makes the rest of the hand
    too big or small, and its depth wrong with it."""
    return (joints[:, _CHILDREN] - joints[:, _PARENTS]).norm(dim=-1).mean(-1)


def objective(hand_model: HandModel, p: FitParameters, obs: TrackObservations,
              limit_frames: torch.Tensor, weights: FitWeights, size_prior: torch.Tensor,
              smoothing: torch.Tensor | None = None) -> torch.Tensor:
    """The weighted sum: data terms averaged with each frame's evidence, priors per frame.
    ``size_prior`` is the log hand size (``hand_size_m``) the track's hand is pulled to."""
    per_frame = frame_terms(hand_model, p, obs, limit_frames, smoothing)
    evidence = terms.frame_factor(obs.weights, obs.present)
    teacher = obs.teacher_confidence.mean(-1)
    total = (weights.reprojection * _every_view(hand_model, p, obs,
                                                _weighted(per_frame["reprojection"], evidence))
             + weights.teacher_3d * _weighted(per_frame["teacher_3d"], teacher)
             + weights.shape * (p.betas**2).mean()
             + weights.skeleton * skeleton_prior(p)
             + weights.teacher_size * (per_frame["log_size"].mean() - size_prior) ** 2)
    for name in ("joint_angle", "rotation_acceleration", "translation_acceleration"):
        total = total + getattr(weights, name) * per_frame[name].mean()
    return total


def view_reprojection(joints: torch.Tensor, view: ViewObservations) -> torch.Tensor:
    """(T,) the reprojection term (``terms.reprojection``) in another camera of a rig."""
    return terms.reprojection(project_in_front(view.joints_here(joints), view.K),
                              view.keypoints, view.weights, view.hand_size)


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


def skeleton_prior(p: FitParameters) -> torch.Tensor:
    """() the mean squared offset of the track's rest joints from the model's, in units of
    ``SKELETON_SCALE_M`` (0 without a skeleton)."""
    if p.skeleton is None:
        return torch.zeros((), dtype=p.betas.dtype, device=p.betas.device)
    return (p.skeleton**2).sum(-1).mean() / SKELETON_SCALE_M**2


def project_in_front(joints: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(T, 21, 2) pixels of (T, 21, 3) joints, with depths held at least ``MIN_DEPTH_M`` in
    front of the camera: a joint at or behind the camera plane has no useful projection, and
    a start that puts one there must not blow the objective up."""
    return project(joints, K.expand(len(joints), 3, 3), min_depth=MIN_DEPTH_M)


def _weighted(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp_min(1e-6)


def fit_track(hand_model: HandModel, obs: TrackObservations, start: FitParameters,
              limit_frames: torch.Tensor, weights: FitWeights = FitWeights(),
              size_prior: torch.Tensor | None = None, steps: int = 200, lr: float = 0.02,
              carry: Carry = "none") -> FitResult:
    """Solve one track from ``start`` with Adam (rotations, shape, skeleton and log depth at
    ``lr``, the anchor's viewing ray at a tenth of it); ``size_prior`` is the log hand size
    (``hand_size_m``) the track is pulled to (default: the start's). The skeleton is solved
    when ``weights.skeleton`` is above 0, from the start's (or the model's own). ``carry``
    holds the frames no view sees on the bridge between the seen ones at every step
    (``gaps.py``: "line" or "cubic" for the anchor's ray and depth; "none" leaves them to the
    temporal terms)."""
    if size_prior is None:
        with torch.no_grad():
            size_prior = hand_size_m(pose_joints(hand_model, start)).log().mean()
    p = start.detach()
    if weights.skeleton > 0 and p.skeleton is None:
        p.skeleton = torch.zeros(len(hand_model.parents), 3, dtype=p.anchor.dtype,
                                 device=p.anchor.device)
    elif weights.skeleton == 0:
        p.skeleton = None
    solved = [p.global_orient, p.hand_pose, p.betas, p.log_scale]
    if p.skeleton is not None:
        solved.append(p.skeleton)
    for tensor in solved:
        tensor.requires_grad_(True)
    # the anchor as its viewing ray and log depth: a start at the wrong depth (the network's,
    # off by a factor) moves in proportion, and the ray keeps the hand where it is seen
    ray = (p.anchor[:, :2] / p.anchor[:, 2:]).clone().requires_grad_(True)
    log_depth = p.anchor[:, 2].clamp_min(MIN_DEPTH_M).log().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([
        {"params": [*solved, log_depth], "lr": lr},
        {"params": [ray], "lr": lr / 10}])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1),
                                                          eta_min=lr / 20)
    unseen = ~seen_frames(obs)
    over = bridge(~unseen, obs.times) if carry != "none" and unseen.any() \
        and not unseen.all() else None
    smoothing = teacher_smoothing(obs)
    for _ in range(steps):
        p.anchor = _anchor(ray, log_depth)
        loss = objective(hand_model, p, obs, limit_frames, weights, size_prior, smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if over is not None:
            _carry_unseen(over, carry, unseen, p.global_orient, p.hand_pose, ray, log_depth)
    p.anchor = _anchor(ray, log_depth)
    p = p.detach()
    with torch.no_grad():
        vertices, joints = pose_hand(hand_model, p)
        residual = terms.teacher_3d(joints, obs.teacher, obs.teacher_confidence, smoothing)
        measured = obs.teacher_confidence.clamp_min(0).sum(-1) > terms.MIN_TEACHER_CONFIDENCE
        residual = torch.where(measured, residual, torch.full_like(residual, float("nan")))
        projected = project(joints, obs.K.expand(len(obs), 3, 3))
    return FitResult(p, joints, vertices, projected, residual, ~obs.present)


Carry = Literal["none", "line", "cubic"]


def seen_frames(obs: TrackObservations) -> torch.Tensor:
    """(T,) frames with a detection in the fit's camera or in any other view of a rig."""
    seen = obs.present.clone()
    for view in obs.views:
        seen |= view.present
    return seen


def _carry_unseen(over: Bridge, carry: Carry, unseen: torch.Tensor, *rows: torch.Tensor
                  ) -> None:
    """Put the unseen frames of the per-frame parameters back on the bridge between the
    seen frames either side (``gaps.py``: rotations slerped, the anchor's ray and log depth
    on a straight line or on the cubic that keeps each end's velocity): with no data term
    there, Adam's steps, each as large for a weak gradient as for a strong one, can walk
    them away."""
    along = over.linear if carry == "line" else over.cubic
    global_orient, hand_pose, *positions = rows
    with torch.no_grad():
        global_orient[unseen] = over.rotations(global_orient)[unseen]
        hand_pose[unseen] = over.rotations(hand_pose)[unseen]
        for values in positions:
            values[unseen] = along(values)[unseen]


def _anchor(ray: torch.Tensor, log_depth: torch.Tensor) -> torch.Tensor:
    depth = log_depth.exp()[:, None]
    return torch.cat([ray * depth, depth], dim=-1)
