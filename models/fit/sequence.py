"""The sequence fit: one tracked hand over T consecutive frames, solved together.

Unknowns: per frame the global rotation, the 15 joint rotations and the anchor (the middle
MCP's camera position); per track one shape (S2HAND(V)'s shape consistency), one size and one
skeleton (offsets of the model's rest joints: the person's proportions, and where the
detector's keypoints sit on a hand, which a hand model's joints need not match).
Evidence and priors (``terms.py``), each weighted by ``FitWeights``:

- robust, confidence-weighted reprojection of the joints onto the 2D detections (frame K);
- agreement with the teacher's 3D joints, root-relative and scale-free;
- agreement with the trained network's 3D joints, root-relative and scale-free, as far as
  the video's calibration trusts the network (off by default);
- the joint-angle limits, shape and skeleton priors and the teacher's metric size for the
  track's size;
- S2HAND(V)'s quaternion motion term and the anchor's acceleration, from the timestamps.

Frames without a detection (inside a track) have no data terms: the temporal terms fill them.
Everything is batched over the frames, on whatever device the observations are on; tracks
are solved many at once (``solve.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Literal

import torch

from ..detectors.schema import BONES
from ..geometry import project
from ..hand.base import HandModel
from ..network.s2hand import ANCHOR_JOINT, place_hand
from . import terms

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
    # the network's joints (T, 21, 3) in the fit's camera (NaN where it has none) and how much
    # each frame's count (T,) (``terms.network_3d``); None: no network evidence
    network: torch.Tensor | None = None
    network_confidence: torch.Tensor | None = None

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
    network_3d: float = 0.0
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
    """(..., T, 21, 3) the joints of ``pose_hand`` without the mesh (what the fit's steps
    need); with leading batch dimensions (``solve.TrackBatch``) the per-track parameters
    (betas, log_scale, skeleton) carry them too."""
    lead = p.global_orient.shape[:-1]
    n = lead.numel()
    betas = p.betas[..., None, :].expand(*lead, -1).reshape(n, -1)
    offsets = None if p.skeleton is None else \
        p.skeleton[..., None, :, :].expand(*lead, -1, -1).reshape(n, -1, 3)
    joints = hand_model.joints_only(p.global_orient.reshape(n, 3),
                                    p.hand_pose.reshape(n, 15, 3), betas, offsets)
    joints = joints.reshape(*lead, *joints.shape[1:])
    origin = joints[..., ANCHOR_JOINT : ANCHOR_JOINT + 1, :]
    return p.anchor[..., None, :] + p.log_scale.exp()[..., None, None, None] * (joints - origin)


def teacher_smoothing(obs: TrackObservations) -> torch.Tensor:
    """(T, T) the track's weights for smoothing the teacher's frame (``terms.teacher_3d``)."""
    return terms.teacher_smoothing(obs.times, TEACHER_FRAME_SMOOTHING_S, obs.teacher_confidence)


def hand_size_m(joints: torch.Tensor) -> torch.Tensor:
    """(..., T) the mean length of the 20 bones, metres: the hand's size as the teacher's metric
    3D gives it. All bones, not one: the hand model's proportions are not the detector's
    (given MediaPipe's wrist-to-middle-MCP length, the embedded hand came out about 15%
    larger overall on the stereo pair), and matching a single bone makes the rest of the hand
    too big or small, and its depth wrong with it."""
    return (joints[..., _CHILDREN, :] - joints[..., _PARENTS, :]).norm(dim=-1).mean(-1)


def view_reprojection(joints: torch.Tensor, view: ViewObservations) -> torch.Tensor:
    """(T,) the reprojection term (``terms.reprojection``) in another camera of a rig."""
    return terms.reprojection(project_in_front(view.joints_here(joints), view.K),
                              view.keypoints, view.weights, view.hand_size)


def skeleton_prior(p: FitParameters) -> torch.Tensor:
    """(...) the mean squared offset of the track's rest joints from the model's, in units of
    ``SKELETON_SCALE_M`` (0 without a skeleton)."""
    if p.skeleton is None:
        return p.betas.new_zeros(p.betas.shape[:-1])
    return (p.skeleton**2).sum(-1).mean(-1) / SKELETON_SCALE_M**2


def project_in_front(joints: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(..., T, 21, 2) pixels of (..., T, 21, 3) joints, with depths held at least
    ``MIN_DEPTH_M`` in front of the camera: a joint at or behind the camera plane has no
    useful projection, and a start that puts one there must not blow the objective up."""
    return project(joints, K.expand(*joints.shape[:-2], 3, 3), min_depth=MIN_DEPTH_M)


Carry = Literal["none", "line", "cubic"]
