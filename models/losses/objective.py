"""The S2HAND training objective: every loss of METHOD.md section 1, weighted and switchable.

``weights`` maps a loss name of ``DEFAULT_WEIGHTS`` (or of ``EXTRA_LOSSES``) to its weight; a
loss that is missing or weighted 0 is not computed (the photometric and mean-colour losses
then skip rendering).

``EXTRA_LOSSES`` are not S2HAND's: ``teacher_3d``, agreement of the predicted joints with the
detector's 3D (root-relative, scale-free, rotation-aligned: ``fit.terms.teacher_3d``),
weighted by the detector's 3D confidence; 0 gives back pure S2HAND. ``CLIP_LOSSES`` are
S2HAND(V)'s (``temporal.py``): computed when a batch is made of clips (``clip_length`` > 1).
``LABEL_LOSSES`` learn from the job's own sequence-fit labels (a round of fit and training,
SPIN's fitting in the loop): the predicted joints projected onto the labels' projection
(``labels_2d``, S2HAND's robust reprojection) and their articulation against the labels'
(``labels_3d``, as ``teacher_3d``), each label weighted by its quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..camera import scale_intrinsics
from ..fit.terms import teacher_3d
from ..geometry import project
from ..hand.limits import joint_limit_penalty, limits_deg
from ..network import S2HandPrediction
from ..render import Renderer, light_from_params
from . import s2hand, temporal
from .mesh import laplacian_loss
from .photometric import photometric_loss

RENDERED_LOSSES = ("photometric", "mean_colour")
CLIP_LOSSES = ("motion", "shape_consistency", "texture_consistency", "camera_smoothness")
LABEL_LOSSES = ("labels_2d", "labels_3d")
EXTRA_LOSSES = ("teacher_3d", *CLIP_LOSSES, *LABEL_LOSSES)


@dataclass
class Supervision:
    """One batch's targets: the crop, the weighted detections and the crop's camera."""

    images: torch.Tensor  # (B, S, S, 3) in [0, 1]
    keypoints: torch.Tensor  # (B, 21, 2) detected, pixels of the images
    confidence: torch.Tensor  # (B, 21) effective joint confidence (its square is the weight)
    sample_weight: torch.Tensor  # (B,) photometric gate of the weight stage
    K: torch.Tensor  # (B, 3, 3)
    teacher: torch.Tensor | None = None  # (B, 21, 3) the detector's 3D (right hands)
    teacher_confidence: torch.Tensor | None = None  # (B, 21)
    clip_length: int = 1  # B = clips * clip_length, clip-major
    times: torch.Tensor | None = None  # (B,) seconds, for clips
    valid: torch.Tensor | None = None  # (B,) False: padding of a clip shorter than T
    labels: torch.Tensor | None = None  # (B, 21, 3) the job's labels, the crop's camera
    label_weight: torch.Tensor | None = None  # (B,) 0: no label


class S2HandObjective:
    def __init__(self, faces: torch.Tensor, limit_frames: torch.Tensor, weights: dict[str, float],
                 renderer: Renderer | None = None, render_size: int | None = None,
                 scale_reference: float = s2hand.MIDDLE_PROXIMAL_LENGTH):
        known = set(s2hand.DEFAULT_WEIGHTS) | set(EXTRA_LOSSES)
        unknown = set(weights) - known
        if unknown:
            raise ValueError(f"unknown losses {sorted(unknown)}; known: {sorted(known)}")
        self.faces, self.frames = faces, limit_frames
        self.limits = torch.tensor(np.radians(limits_deg()), dtype=torch.float32)
        self.weights = {k: float(v) for k, v in weights.items() if v}
        self.renderer, self.render_size = renderer, render_size
        self.scale_reference = scale_reference
        if self.renders and renderer is None:
            raise ValueError("the photometric and mean-colour losses need a renderer")

    @property
    def renders(self) -> bool:
        return any(name in self.weights for name in RENDERED_LOSSES)

    def __call__(self, pred: S2HandPrediction, target: Supervision) -> dict[str, torch.Tensor]:
        """Unweighted terms by name, plus ``total``: the weighted sum, and ``unrendered``
        when the renderer ran: how many of the batch's meshes it could not render (their
        rendered losses see a blank image)."""
        terms = self._geometry_terms(pred, target)
        if target.clip_length > 1:
            terms.update(self._clip_terms(pred, target))
        unrendered = None
        if self.renders:
            rendered, unrendered = self._rendered_terms(pred, target)
            terms.update(rendered)
        terms = {k: v for k, v in terms.items() if k in self.weights}
        terms["total"] = sum(self.weights[k] * v for k, v in terms.items())
        if unrendered is not None:
            terms["unrendered"] = unrendered
        return terms

    def _geometry_terms(self, pred: S2HandPrediction, t: Supervision) -> dict:
        w = self.weights
        terms = {}
        if "reprojection" in w:
            terms["reprojection"] = s2hand.reprojection_loss(pred.joints_2d, t.keypoints,
                                                             t.confidence)
        if "bone_direction" in w:
            terms["bone_direction"] = s2hand.bone_direction_loss(pred.joints_2d, t.keypoints,
                                                                 t.confidence)
        if "branch_2d" in w:
            terms["branch_2d"] = s2hand.branch_2d_loss(pred.branch_2d, t.keypoints, t.confidence)
        if "consistency_2d3d" in w:
            terms["consistency_2d3d"] = s2hand.consistency_2d3d_loss(pred.joints_2d,
                                                                     pred.branch_2d)
        if "scale" in w:
            terms["scale"] = s2hand.scale_prior_loss(pred.joints_3d, self.scale_reference)
        if "joint_angle" in w:
            terms["joint_angle"] = joint_limit_penalty(
                pred.hand_pose, self.frames.to(pred.hand_pose), self.limits).mean()
        if "shape" in w:
            terms["shape"] = s2hand.shape_prior_loss(pred.betas)
        if "laplacian" in w:
            terms["laplacian"] = laplacian_loss(pred.vertices, self.faces)
        if "teacher_3d" in w and t.teacher is not None:
            per_sample = teacher_3d(pred.joints_3d, t.teacher, t.teacher_confidence)
            trust = t.teacher_confidence.mean(-1)
            terms["teacher_3d"] = (per_sample * trust).sum() / trust.sum().clamp_min(1e-6)
        if t.labels is not None and t.label_weight.sum() > 0:
            terms.update(self._label_terms(pred, t))
        if "texture_outliers" in w:
            terms["texture_outliers"] = s2hand.texture_outlier_loss(
                pred.albedo[:, self.faces].mean(2))
        return terms

    def _label_terms(self, pred: S2HandPrediction, t: Supervision) -> dict:
        w, terms = self.weights, {}
        if "labels_2d" in w:
            target = project(t.labels, t.K)
            confidence = t.label_weight.sqrt()[:, None].expand(-1, target.shape[1])
            terms["labels_2d"] = s2hand.reprojection_loss(pred.joints_2d, target, confidence)
        if "labels_3d" in w:
            confidence = t.label_weight[:, None].expand(-1, t.labels.shape[1])
            per_sample = teacher_3d(pred.joints_3d, t.labels, confidence)
            terms["labels_3d"] = ((per_sample * t.label_weight).sum()
                                  / t.label_weight.sum().clamp_min(1e-6))
        return terms

    def _clip_terms(self, pred: S2HandPrediction, t: Supervision) -> dict:
        w, T = self.weights, t.clip_length
        valid = t.valid if t.valid is not None else torch.ones(len(t.K), dtype=torch.bool,
                                                                device=t.K.device)
        trust = t.confidence.mean(-1)
        terms = {}
        if "motion" in w:
            terms["motion"] = temporal.motion_loss(pred.global_orient, pred.hand_pose, t.times,
                                                   valid, T)
        if "camera_smoothness" in w:
            terms["camera_smoothness"] = temporal.camera_smoothness_loss(
                pred.translation, pred.scale, t.times, valid, T)
        if "shape_consistency" in w:
            terms["shape_consistency"] = temporal.consistency_loss(pred.betas, trust, valid, T)
        if "texture_consistency" in w:
            terms["texture_consistency"] = temporal.consistency_loss(pred.albedo, trust, valid,
                                                                     T)
        return terms

    def _rendered_terms(self, pred: S2HandPrediction, t: Supervision
                        ) -> tuple[dict, torch.Tensor]:
        size = self.render_size or t.images.shape[1]
        K, images = t.K, t.images
        if size != images.shape[1]:
            K = scale_intrinsics(K, size / images.shape[1])
            images = F.interpolate(images.permute(0, 3, 1, 2), size=size, mode="area"
                                   ).permute(0, 2, 3, 1)
        out = self.renderer.render(pred.vertices, self.faces, pred.albedo, K, size, size,
                                   light_from_params(pred.light))
        rendered, mask = out.image.float().clamp(0, 1), out.silhouette.float()
        terms = {}
        if "photometric" in self.weights:
            terms["photometric"] = photometric_loss(rendered, images, mask, t.sample_weight)
        if "mean_colour" in self.weights:
            terms["mean_colour"] = s2hand.mean_colour_loss(rendered, images, mask,
                                                           t.sample_weight)
        skipped = out.unrendered if out.unrendered is not None else torch.zeros(len(K), dtype=bool)
        return terms, skipped.sum()

