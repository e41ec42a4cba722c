"""S2HAND(V)'s clip losses (METHOD.md section 2): the network runs weight-shared on the T
frames of a clip of one tracked hand, and these terms tie its outputs across the frames.

Shapes: a batch of B = C * T samples holds C clips of T consecutive frames, clip-major (the
frames of clip c are samples c*T ... c*T + T - 1). ``valid`` (B,) marks real frames; a clip
of a track shorter than T is padded by repeating its last frame, marked invalid, which no
term counts. ``weight`` (B,) is how much a frame's prediction is trusted (its detections'
mean confidence), so that a frame the detector lost does not pull the others.

The motion and camera terms share the sequence fit's functions (``fit.terms``): the same
quaternion motion term and translation acceleration, levelled off above a knee, so a clip
over a cut costs a bounded amount.
"""

from __future__ import annotations

import torch

from ..fit import terms


def _clips(values: torch.Tensor, clip_length: int) -> torch.Tensor:
    """(B, ...) -> (C, T, ...)."""
    if values.shape[0] % clip_length:
        raise ValueError(f"a batch of {values.shape[0]} samples is not made of clips of "
                         f"{clip_length} frames")
    return values.reshape(-1, clip_length, *values.shape[1:])


def _interior_mean(per_frame: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over frames whose two neighbours and themselves are valid (C, T)."""
    usable = valid[:, :-2] & valid[:, 1:-1] & valid[:, 2:]
    usable = torch.nn.functional.pad(usable, (1, 1))
    count = usable.sum()
    if count == 0:
        return per_frame.sum() * 0.0
    return (per_frame * usable).sum() / count


def motion_loss(global_orient: torch.Tensor, hand_pose: torch.Tensor, times: torch.Tensor,
                valid: torch.Tensor, clip_length: int) -> torch.Tensor:
    """S2HAND(V)'s quaternion motion loss: the change of every joint's frame-to-frame relative
    rotation (global orientation and the 15 joint rotations), so that any constant rotation
    speed costs nothing; q and -q are the same rotation.

    Args:
        global_orient: (B, 3) axis-angle. hand_pose: (B, 15, 3) axis-angle.
        times: (B,) seconds. valid: (B,) bool.
    Returns:
        () mean over the clips' interior frames.
    """
    rotations = torch.cat([global_orient[:, None], hand_pose], 1)
    per_frame = terms.rotation_acceleration(_clips(rotations, clip_length),
                                            _clips(times, clip_length))
    return _interior_mean(per_frame, _clips(valid, clip_length))


def camera_smoothness_loss(translation: torch.Tensor, scale: torch.Tensor, times: torch.Tensor,
                           valid: torch.Tensor, clip_length: int) -> torch.Tensor:
    """Acceleration of the predicted camera: the anchor translation (B, 3) relative to its
    depth, and the log of the scale (B,), per nominal frame squared."""
    anchors = terms.translation_acceleration(_clips(translation, clip_length),
                                             _clips(times, clip_length))
    log_scale = _clips(scale.abs().clamp_min(1e-6).log(), clip_length)
    rates = torch.diff(_clips(times, clip_length), dim=-1)
    rates = rates / rates.median(-1, keepdim=True).values.clamp_min(1e-9)
    scale_change = torch.diff(torch.diff(log_scale, dim=-1) / rates.clamp_min(1e-6), dim=-1)
    per_frame = anchors + torch.nn.functional.pad(scale_change**2, (1, 1))
    return _interior_mean(per_frame, _clips(valid, clip_length))


def consistency_loss(values: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor,
                     clip_length: int) -> torch.Tensor:
    """S2HAND(V)'s texture and shape consistency for one quantity of a clip's frames: the
    weighted mean squared distance of each frame's ``values`` (B, ...) to the clip's weighted
    mean, so one hand keeps one shape (or texture) through a clip.

    Args:
        values: (B, ...) per-frame predictions, e.g. betas (B, S) or albedo (B, V, 3).
        weight: (B,) trust in each frame. valid: (B,) bool.
    Returns:
        () the weighted mean over frames of the squared distance, averaged over the
        quantity's elements.
    """
    x = _clips(values, clip_length).flatten(2)
    w = _clips(weight.clamp_min(0) * valid, clip_length)[..., None]
    total = w.sum(1, keepdim=True)
    mean = (x * w).sum(1, keepdim=True) / total.clamp_min(1e-8)
    spread = ((x - mean) ** 2).mean(-1, keepdim=True)
    if total.sum() <= 0:
        return spread.sum() * 0.0
    return (spread * w).sum() / total.sum()
