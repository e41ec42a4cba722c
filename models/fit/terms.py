"""The sequence fit's terms, each per frame (T,) so that frames can be weighted, compared and
chosen between; the objective (``objective.py``) sums them with their weights.

Shapes: T frames of one hand track; joints (T, 21, 3) metres in the camera frame; keypoints
(T, 21, 2) frame pixels; weights and confidences (T, 21); rotations as axis-angle (T, J, 3).
Every term also takes leading batch dimensions (B tracks, ``sequence.TrackBatch``): (B, T, ...).
"""

from __future__ import annotations

import roma
import torch

from ..losses.s2hand import JOINT_WEIGHTS

ROBUST_KNEE = 0.035  # hand sizes: S2HAND's 5 px knee on a 224 px crop's ~140 px hand
# Knees of the temporal terms (per frame^2): below them a change costs its square, above it
# the cost levels off at the knee's square (Geman-McClure), so a cut between unrelated frames
# (edited video, an image set read as frames, another person's hand in the slot) costs a
# bounded amount instead of dragging the frames on either side towards each other. Chosen on
# the tuning seeds (200-202) of ordered, shuffled and cut synthetic sequences.
ROTATION_KNEE = 0.3  # rad per nominal frame^2
TRANSLATION_KNEE = 0.05  # anchor depths per nominal frame^2
MIN_TEACHER_CONFIDENCE = 1e-3  # summed over a frame's joints: below it, no teacher 3D
TINY = 1e-20


def robust(d: torch.Tensor, knee: float = ROBUST_KNEE) -> torch.Tensor:
    """Quadratic below ``knee``, linear above (C1): a wrong detection pulls, but boundedly."""
    return torch.where(d < knee, d**2 / (2 * knee), d - knee / 2)


def levelled(squared: torch.Tensor, knee: float) -> torch.Tensor:
    """Geman-McClure on a squared change: ``squared`` where it is small against ``knee``**2,
    levelling off at ``knee``**2 (so one large change costs at most that)."""
    return squared * knee**2 / (squared + knee**2)


def relative_joint_weights(weights: torch.Tensor) -> torch.Tensor:
    """(T, 21) a hand's joint weights divided by their mean, times METHOD's joint weights.

    Relative, so that a frame's overall confidence does not decide how closely its own joints
    are followed; that belongs to the frame factor (``frame_factor``), which trades the frame's
    detections against the temporal terms.
    """
    mean = weights.mean(-1, keepdim=True)
    relative = torch.where(mean > TINY, weights / mean.clamp_min(TINY), torch.ones_like(weights))
    return relative * JOINT_WEIGHTS.to(weights)


def frame_factor(weights: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(..., T) how much a frame's detection counts against the track's other frames: the root of
    its mean joint weight (the weight stage's weights are confidence squared) over the
    track's largest, 0 for frames without a detection. Relative, because a track whose every
    detection is unsure (TTA views that lose the hand give it a confidence near 0) still has
    nothing better than its detections."""
    factor = weights.mean(-1).clamp_min(0).sqrt()
    top = factor.amax(-1, keepdim=True)
    return torch.where(top > TINY, factor / top.clamp_min(TINY), present.to(weights))


def reprojection(projected: torch.Tensor, keypoints: torch.Tensor, weights: torch.Tensor,
                 hand_size: torch.Tensor) -> torch.Tensor:
    """(T,) robust distance of the projected joints to the detections, in hand sizes, with
    relative joint weights."""
    distance = (projected - keypoints).norm(dim=-1) / hand_size[..., None].clamp_min(1.0)
    relative = relative_joint_weights(weights)
    return (robust(distance) * relative).sum(-1) / relative.sum(-1).clamp_min(1e-6)


def _normalised(points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Points centred on their weighted mean and scaled to unit weighted RMS radius."""
    w = weights[..., None] / weights.sum(-1)[..., None, None]
    centred = points - (points * w).sum(-2, keepdim=True)
    radius = ((centred**2).sum(-1, keepdim=True) * w).sum(-2, keepdim=True).sqrt()
    return centred / radius.clamp_min(1e-6)


def teacher_3d(joints: torch.Tensor, teacher: torch.Tensor, confidence: torch.Tensor,
               smoothing: torch.Tensor | None = None) -> torch.Tensor:
    """(T,) squared distance between the fitted joints and the teacher's 3D joints, both
    centred and scaled to unit size, after rotating the teacher onto the fit.

    Root-relative and scale-free: it says how the hand is articulated, not where it is or how
    big. The teacher's frame (MediaPipe's world axes) is not the camera's, so the rotation is
    solved (weighted Kabsch); with ``smoothing`` (``teacher_smoothing``: a Gaussian window
    in time) it is then averaged over neighbouring frames, because the teacher's frame drifts
    slowly
    while a fit that turns away from the teacher's orientation for a few frames (a pose that
    2D alone cannot tell from its mirror in depth) should pay for it. The rotation is held
    fixed for the gradient: it is the best (or nearly the best) one, where the residual's
    derivative by it vanishes, and the solve stays cheap and stable.
    """
    weights = confidence.clamp_min(0)
    has_teacher = (weights.sum(-1) > MIN_TEACHER_CONFIDENCE)[..., None, None]
    weights = torch.where(has_teacher[..., 0], weights, torch.ones_like(weights))
    target = torch.where(has_teacher, teacher.nan_to_num(), joints.detach())
    fit, target = _normalised(joints, weights), _normalised(target, weights)
    with torch.no_grad():
        rotation, _ = roma.rigid_points_registration(target, fit, weights=weights + 1e-6)
        if smoothing is not None and rotation.shape[-3] > 1:
            rotation = _smoothed_rotations(rotation, smoothing)
    aligned = torch.einsum("...ij,...nj->...ni", rotation, target)
    residual = ((fit - aligned) ** 2).sum(-1)
    per_frame = (residual * weights).sum(-1) / weights.sum(-1)
    return torch.where(has_teacher[..., 0, 0], per_frame, torch.zeros_like(per_frame))


def network_3d(joints: torch.Tensor, network: torch.Tensor, confidence: torch.Tensor
               ) -> torch.Tensor:
    """(T,) ``teacher_3d`` against the trained network's joints (T, 21, 3), times each frame's
    ``confidence`` (T,) (0 where the network has no prediction): the network's articulation,
    not its orientation, size or place.

    Why not in the camera's axes, though the network predicts the hand's orientation there:
    on the occlusion benchmark that version took the labels' 2D error on occluded frames from
    23 to 30 px (on a frame whose detection is hidden the network's term is the only data,
    and its orientation under an object is off), where the articulation alone cost 1 px and
    kept the 3D gain (docs/accuracy.md, "Rounds of fit and training").

    >>> hand = torch.randn(1, 21, 3)
    >>> turned = hand * torch.tensor([-1.0, -1.0, 1.0])  # half a turn about the optical axis
    >>> round(float(network_3d(hand, 2 * turned + 1, torch.ones(1))), 6)
    0.0
    >>> float(network_3d(hand, torch.randn(1, 21, 3), torch.ones(1))) > 0.1
    True
    """
    usable = torch.isfinite(network).all(-1).all(-1) & (confidence > 0)
    trust = torch.where(usable, confidence, torch.zeros_like(confidence))
    joint_confidence = trust[..., None].expand(*trust.shape, joints.shape[-2])
    return teacher_3d(joints, network.nan_to_num(), joint_confidence) * trust


def teacher_smoothing(times: torch.Tensor, sigma_s: float, confidence: torch.Tensor
                      ) -> torch.Tensor:
    """(..., T, T) how much frame s's teacher rotation counts for frame t in ``teacher_3d``: a
    Gaussian of ``sigma_s`` seconds in time, times frame s's mean teacher confidence (0
    without a teacher). It depends on the observations only, so a fit computes it once."""
    weights = confidence.clamp_min(0)
    trust = (weights.sum(-1) > MIN_TEACHER_CONFIDENCE) * weights.mean(-1)
    gap = (times[..., :, None] - times[..., None, :]) / sigma_s
    return torch.exp(-0.5 * gap**2).to(confidence) * trust[..., None, :]


def _smoothed_rotations(rotations: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(..., T, 3, 3) each frame's rotation replaced by the chordal mean of its neighbours',
    weighted by ``kernel`` (..., T, T) (``teacher_smoothing``); frames whose rotation could not be
    solved do not count."""
    usable = torch.isfinite(rotations).all(-1).all(-1)
    rotations = torch.where(usable[..., None, None], rotations,
                            torch.eye(3, dtype=rotations.dtype, device=rotations.device))
    kernel = kernel.to(rotations) * usable[..., None, :]
    summed = torch.einsum("...ts,...sij->...tij", kernel, rotations)
    return roma.special_procrustes(summed + 1e-9 * rotations)


def _per_frame_rates(times: torch.Tensor) -> torch.Tensor:
    """(..., T-1) each step's duration in units of the sequence's median step, so that rates
    are per nominal frame whatever the timestamps."""
    steps = torch.diff(times, dim=-1).clamp_min(1e-6)
    if steps.shape[-1] == 0:  # a one-frame track: no steps
        return steps
    return steps / steps.median(-1, keepdim=True).values


def rotation_acceleration(rotvecs: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """(..., T) S2HAND(V)'s quaternion motion term: the change of the frame-to-frame relative
    rotation of every joint, squared (rad per nominal frame, per frame) and levelled off
    above ``ROTATION_KNEE``.

    Args:
        rotvecs: (..., T, J, 3) axis-angle rotations of J joints over T frames.
        times: (..., T) seconds.

    Rotations become unit quaternions; the relative rotation q_{t+1} q_t^-1 becomes an angular
    velocity (its rotation vector, which takes the shorter way round, so q and -q are the
    same rotation), divided by the step's duration. A constant rotation speed costs nothing.
    The term of an interior frame is its velocity change; the first and last frames get 0.
    """
    quaternions = roma.rotvec_to_unitquat(rotvecs)
    relative = roma.quat_product(quaternions[..., 1:, :, :],
                                 roma.quat_inverse(quaternions[..., :-1, :, :]))
    velocity = roma.unitquat_to_rotvec(relative) / _per_frame_rates(times)[..., None, None]
    change = levelled((torch.diff(velocity, dim=-3) ** 2).sum(-1), ROTATION_KNEE).mean(-1)
    return torch.nn.functional.pad(change, (1, 1))


def translation_acceleration(anchors: torch.Tensor, times: torch.Tensor,
                             frames: torch.Tensor | None = None) -> torch.Tensor:
    """(..., T) squared acceleration of the hand's anchor (..., T, 3) relative to its typical
    depth (the median over ``frames`` (..., T), default all: so a hand far away is not held
    stiffer than a near one), per nominal frame squared, levelled off above
    ``TRANSLATION_KNEE``."""
    depth = anchors[..., 2].detach()
    if frames is not None:
        depth = torch.where(frames, depth, torch.full_like(depth, float("nan")))
    depth = depth.nanmedian(-1, keepdim=True).values.clamp_min(1e-3)
    relative = anchors / depth[..., None]
    velocity = torch.diff(relative, dim=-2) / _per_frame_rates(times)[..., None]
    change = levelled((torch.diff(velocity, dim=-2) ** 2).sum(-1), TRANSLATION_KNEE)
    return torch.nn.functional.pad(change, (1, 1))


def reprojection_px(projected: torch.Tensor, keypoints: torch.Tensor, weights: torch.Tensor
                    ) -> torch.Tensor:
    """(T,) the weighted mean distance in pixels of the projected joints to the detections
    (what the labels report); NaN where a frame has no weight: nothing was measured there.

    >>> reprojection_px(torch.zeros(2, 1, 2), torch.tensor([[[3.0, 4.0]], [[1.0, 0.0]]]),
    ...                 torch.tensor([[1.0], [0.0]])).tolist()
    [5.0, nan]
    """
    distance = (projected - keypoints).nan_to_num().norm(dim=-1)
    total = weights.sum(-1)
    error = (distance * weights).sum(-1) / total.clamp_min(1e-8)
    return torch.where(total > 0, error, torch.full_like(error, float("nan")))
