"""The rig stage's 3D, per rig, once every member video is reconstructed:

1. per rig frame, each hand of the reference camera matched to a detection in every other
   camera by geometry (``models/rig/triangulation.matched_slots``), and triangulated from its
   undistorted detections with their weights: ``rigs/<name>/triangulate/``;
2. per hand track (the reference camera's tracks), the sequence fit over every view at once,
   with the triangulated joints as its 3D teacher and metric size: ``rigs/<name>/labels/``,
   in the world frame and in each camera's.

A rig frame ``r`` is frame ``r + offsets[camera]`` of each camera's video. Hands are named by
the reference camera's slots (0 left, 1 right, as its detector labelled them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch

from handlabel.config import HandlabelConfig
from handlabel.keys import stage_key
from handlabel.models.fit.quality import track_quality
from handlabel.models.fit.sequence import (
    FitResult,
    TrackObservations,
    ViewObservations,
    project_in_front,
)
from handlabel.models.fit.terms import reprojection_px
from handlabel.models.fit.track import track_spans
from handlabel.models.fit.window import NETWORK_START, WindowArrays, solve_window, window_evidence
from handlabel.models.hand.base import HandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.hand.sides import mirror_matrix, mirror_points, mirror_rotations
from handlabel.models.keypoints import hand_sizes
from handlabel.models.rig.cameras import RigGeometry, rig_geometry
from handlabel.models.rig.triangulation import CameraView, matched_slots, triangulate_hand
from handlabel.models.tracking import N_SLOTS
from handlabel.models.training.setup import pick_device
from handlabel.storage.calibration import RigCalibration
from handlabel.storage.stage_arrays import ArraySpec
from handlabel.storage.store import DatasetStore

from .hand_fit import fit_weights_of
from .reconstruct import _network, model_version

TRIANGULATE, LABELS = "triangulate", "labels"


class RigMembers:
    """A registered rig's cameras and what their videos' stages hold, over the rig frames."""

    def __init__(self, store: DatasetStore, name: str):
        self.store, self.name = store, name
        attrs = dict(store.rig(name).attrs)
        self.cameras: list[str] = attrs["cameras"]
        self.members: dict[str, str] = attrs["members"]
        self.offsets: dict[str, int] = attrs["offsets"]
        self.n_frames: int = attrs["n_frames"]
        self.reference: int = self.cameras.index(attrs["reference"])
        # the stored frames' K (a downscaled video's is scaled); distortion is scale-free
        K = np.stack([np.asarray(store.video(self.members[c]).attrs["K"], float)
                      for c in self.cameras])
        self.geometry = rig_geometry(RigCalibration.from_json(attrs["calibration"]),
                                     self.cameras, K)

    def read(self, camera: int, stage: str, key: str) -> np.ndarray:
        """(N, ...) a stage's array of one camera's video over the rig frames."""
        name = self.cameras[camera]
        start = self.offsets[name]
        return self.store.stage(self.members[name], stage).read(key, start,
                                                              start + self.n_frames)

    def times(self) -> np.ndarray:
        name = self.cameras[self.reference]
        start = self.offsets[name]
        return self.store.video(self.members[name]).timestamps()[start:start + self.n_frames]

    def inputs(self) -> str:
        """What the rig's 3D is made from: each member's labels and the model."""
        parts = [f"{video}:{self.store.labels_version(video)}"
                 for video in (self.members[c] for c in self.cameras)]
        return "|".join(parts) + f"|model {model_version(self.store)}"


def triangulate_spec(n_cameras: int) -> dict[str, ArraySpec]:
    """Per rig frame, axis 1 the hand (the reference camera's slot); world frame, metres."""
    nan = np.nan
    return {"present": ArraySpec((N_SLOTS,), "bool", False),
            "joints": ArraySpec((N_SLOTS, 21, 3), "float32", nan),
            "confidence": ArraySpec((N_SLOTS, 21), "float32", 0.0),
            "residual_px": ArraySpec((N_SLOTS, n_cameras, 21), "float32", nan),
            "view_slot": ArraySpec((N_SLOTS, n_cameras), "int8", -1)}


def labels_spec(n_cameras: int, n_vertices: int, n_shape: int, n_joints: int
                ) -> dict[str, ArraySpec]:
    """Per rig frame, axis 1 the hand; world frame (metres) unless the name says a camera's."""
    nan = np.nan
    return {"present": ArraySpec((N_SLOTS,), "bool", False),
            "interpolated": ArraySpec((N_SLOTS,), "bool", False),
            "quality": ArraySpec((N_SLOTS,), "float32", 0.0),
            "joints_world": ArraySpec((N_SLOTS, 21, 3), "float32", nan),
            "vertices_world": ArraySpec((N_SLOTS, n_vertices, 3), "float32", nan),
            "joints_camera": ArraySpec((N_SLOTS, n_cameras, 21, 3), "float32", nan),
            "keypoints_2d": ArraySpec((N_SLOTS, n_cameras, 21, 2), "float32", nan),
            "reprojection_px": ArraySpec((N_SLOTS, n_cameras), "float32", nan),
            "global_orient_world": ArraySpec((N_SLOTS, 3), "float32", nan),
            "hand_pose": ArraySpec((N_SLOTS, 15, 3), "float32", nan),
            "betas": ArraySpec((N_SLOTS, n_shape), "float32", nan),
            "skeleton": ArraySpec((N_SLOTS, n_joints, 3), "float32", nan),
            "scale": ArraySpec((N_SLOTS,), "float32", nan)}


def rig_key(config: HandlabelConfig) -> str:
    """What decides the rig stage's output besides its inputs."""
    settings = config.rig.model_copy(update={"rigs": []})
    return stage_key("rig", settings, inputs=[stage_key("reconstruct", config.reconstruct)])


def is_current(store: DatasetStore, name: str, config: HandlabelConfig) -> bool:
    labels = store.rig_stage(name, LABELS)
    return (labels is not None and labels.attrs.get("complete")
            and labels.attrs.get("config_hash") == rig_key(config)
            and labels.attrs.get("inputs") == RigMembers(store, name).inputs())


def rig_is_current(store: DatasetStore, name: str, config: HandlabelConfig) -> bool:
    """The stage registry's currency test (flows/stages.py). A rig whose members are not all
    reconstructed is not current: the rig flow reports it as failed, and a rerun must say so
    rather than answer that nothing is to do."""
    try:
        return bool(is_current(store, name, config))
    except (KeyError, ValueError, RuntimeError):
        return False


def reconstruct_rig(store: DatasetStore, name: str, config: HandlabelConfig) -> int:
    """Triangulate and fit a rig's hands; returns the hands labelled."""
    rig = RigMembers(store, name)
    views = camera_views(rig)
    triangulated = triangulate_rig(rig, views, config)
    attrs = {"config_hash": rig_key(config), "inputs": rig.inputs()}
    tri = store.create_rig_stage(name, TRIANGULATE, n_frames=rig.n_frames,
                                 chunk_frames=rig.n_frames, spec=triangulate_spec(len(views)),
                                 attrs=attrs)
    tri.write_all(triangulated)
    net, _ = _network(store.url, model_version(store))
    hand_model = net.hand_model
    spec = labels_spec(len(views), int(net.appearance.n_vertices), hand_model.n_shape,
                       len(hand_model.parents))
    labels = store.create_rig_stage(name, LABELS, n_frames=rig.n_frames,
                                    chunk_frames=rig.n_frames, spec=spec, attrs=attrs)
    values = {k: np.full((rig.n_frames, *s.tail), s.fill_value, s.dtype)
              for k, s in spec.items()}
    written = 0
    if config.rig.fit:
        device = pick_device(config.reconstruct.device)
        fit = RigFit(rig, views, triangulated, hand_model.to(device),
                     model_limit_frames(hand_model).to(device), config, values, device)
        written = _fit_rig(fit)
    labels.write_all(values)
    labels.update_attrs(complete=True)
    return written


def camera_views(rig: RigMembers) -> list[CameraView]:
    """Per camera, its detections over the rig frames, undistorted, with their weights."""
    views = []
    for camera in range(len(rig.cameras)):
        keypoints = rig.read(camera, "detect", "keypoints")[..., :2].astype(float)
        present = rig.read(camera, "detect", "present")
        weights = np.where(present[..., None], rig.read(camera, "weight", "joint"), 0.0)
        undistorted = rig.geometry.undistort(keypoints, camera)
        sizes = np.stack([hand_sizes(undistorted[:, s]) for s in range(N_SLOTS)], axis=1)
        views.append(CameraView(present, undistorted, weights, np.nan_to_num(sizes, nan=1.0)))
    return views


def triangulate_rig(rig: RigMembers, views: list[CameraView], config: HandlabelConfig
                    ) -> dict:
    """The ``triangulate_spec`` arrays of every rig frame."""
    P = rig.geometry.projections()
    ref = rig.reference
    out = {k: np.full((rig.n_frames, *s.tail), s.fill_value, s.dtype)
           for k, s in triangulate_spec(len(views)).items()}
    for frame in range(rig.n_frames):
        slots = matched_slots(views, ref, frame, P, config.rig.inlier_hand_sizes)
        for hand in range(N_SLOTS):
            chosen = slots[hand]
            out["view_slot"][frame, hand] = chosen
            if (chosen >= 0).sum() < 2:
                continue
            pixels, weights, sizes = _gather(views, frame, chosen)
            result = triangulate_hand(pixels, weights, P, sizes, config.rig.inlier_hand_sizes,
                                      config.rig.confidence_hand_sizes)
            out["present"][frame, hand] = bool((result.confidence > 0).any())
            out["joints"][frame, hand] = result.joints
            out["confidence"][frame, hand] = result.confidence
            out["residual_px"][frame, hand] = result.residual
    return out


def _gather(views: list[CameraView], frame: int, chosen: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, 21, 2) pixels, (C, 21) weights, (C,) sizes of the chosen slot in each camera (NaN,
    0 and 1 where a camera does not see the hand)."""
    n = len(views)
    pixels = np.full((n, 21, 2), np.nan)
    weights, sizes = np.zeros((n, 21)), np.ones(n)
    for camera, slot in enumerate(chosen):
        if slot >= 0:
            pixels[camera] = views[camera].pixels[frame, slot]
            weights[camera] = views[camera].weights[frame, slot]
            sizes[camera] = views[camera].size[frame, slot]
    return pixels, weights, sizes


@dataclass
class RigFit:
    """What every window of a rig's fit reads and writes.

    Attributes:
        views: per camera, its detections (``CameraView``).
        triangulated: the ``triangulate_spec`` arrays, (N, N_SLOTS, ...).
        limit_frames: the hand model's joint-limit frames, on ``device``.
        values: the ``labels_spec`` arrays being filled, (N, N_SLOTS, ...).
    """

    rig: RigMembers
    views: list[CameraView]
    triangulated: dict[str, np.ndarray]
    hand_model: HandModel
    limit_frames: torch.Tensor
    config: HandlabelConfig
    values: dict[str, np.ndarray]
    device: torch.device


def _fit_rig(fit: RigFit) -> int:
    times, fit_config = fit.rig.times(), fit.config.reconstruct.fit
    present = fit.views[fit.rig.reference].present
    written = 0
    for hand in range(N_SLOTS):
        for first, stop in track_spans(present[:, hand], times, fit_config.max_gap_s):
            for start in range(first, stop, fit_config.window_frames):
                end = min(start + fit_config.window_frames, stop)
                if _fit_window(fit, hand, start, end):
                    written += end - start
    return written


def _fit_window(fit: RigFit, hand: int, start: int, stop: int) -> bool:
    """Fit one window of the reference camera's track in slot ``hand``; False when the
    window had nothing to fit."""
    rig, view = fit.rig, fit.views[fit.rig.reference]
    frames = slice(start, stop)

    def read(stage, key):
        return rig.read(rig.reference, stage, key)[frames, hand]

    evidence = window_evidence(WindowArrays(
        keypoints=view.pixels[frames, hand], weights=view.weights[frames, hand],
        world=read("detect", "world"), world_confidence=read("detect", "world_confidence"),
        present=read("detect", "present"), mirrored=read("detect", "mirrored"),
        times=rig.times()[frames], K=rig.geometry.K[rig.reference],
        network={k: read("network", k) for k in NETWORK_START}), fit.device)
    _use_triangulation(fit, evidence.obs, evidence.placed, hand, frames, evidence.mirrored)
    evidence.obs.views = _other_views(fit, hand, frames, evidence.mirrored)
    settings = fit.config.reconstruct.fit
    solved = solve_window(fit.hand_model, evidence, fit.limit_frames, fit_weights_of(settings),
                          settings.steps, settings.learning_rate, carry=settings.carry_unseen)
    if solved is None:
        return False
    _write_hand(fit, hand, start, solved[0], evidence.obs, evidence.mirrored)
    return True


def _use_triangulation(fit: RigFit, obs: TrackObservations, placed: torch.Tensor, hand: int,
                       frames: slice, mirrored: bool) -> None:
    """The triangulated joints (in the fit's camera) as the track's 3D teacher and start where
    they exist: metric and absolutely placed, where the detector's 3D is neither."""
    rig, triangulated, device = fit.rig, fit.triangulated, fit.device
    joints = mirror_points(rig.geometry.to_camera(
        triangulated["joints"][frames, hand].astype(float), rig.reference), mirrored)
    confidence = triangulated["confidence"][frames, hand]
    has = triangulated["present"][frames, hand] & (confidence.sum(-1) > 0)
    if not has.any():
        return
    teacher = torch.as_tensor(np.nan_to_num(joints), dtype=torch.float32, device=device)
    trust = torch.as_tensor(np.where(has[:, None], confidence, 0), dtype=torch.float32,
                            device=device)
    where = torch.as_tensor(has, device=device)
    obs.teacher = torch.where(where[:, None, None], teacher, obs.teacher)
    obs.teacher_confidence = torch.where(where[:, None], trust, obs.teacher_confidence)
    complete = has & np.isfinite(joints).all(-1).all(-1)
    placed[torch.as_tensor(complete, device=device)] = teacher[
        torch.as_tensor(complete, device=device)]


def _other_views(fit: RigFit, hand: int, frames: slice, mirrored: bool
                 ) -> list[ViewObservations]:
    """Every other camera's detections of the hand, each seen from the fit's camera (the
    reference's, mirrored for a left hand)."""
    rig, triangulated, device = fit.rig, fit.triangulated, fit.device
    ref, out = rig.reference, []
    into_fit = mirror_matrix(mirrored)

    def tensor(values, dtype=torch.float32):
        return torch.as_tensor(np.asarray(values), dtype=dtype, device=device)

    for camera, view in enumerate(fit.views):
        if camera == ref:
            continue
        slot = triangulated["view_slot"][frames, hand, camera]
        seen = slot >= 0
        index = np.clip(slot, 0, None)
        rows = np.arange(frames.stop - frames.start) + frames.start
        pixels = view.pixels[rows, index]
        weights = np.where(seen[:, None], view.weights[rows, index], 0.0)
        R, t = rig.geometry.between(ref, camera)
        out.append(ViewObservations(
            keypoints=tensor(np.nan_to_num(pixels)), weights=tensor(weights),
            hand_size=tensor(view.size[rows, index]), present=tensor(seen, torch.bool),
            R=tensor(R @ into_fit), t=tensor(t), K=tensor(rig.geometry.K[camera])))
    return out


def _write_hand(fit: RigFit, hand: int, start: int, result: FitResult,
                obs: TrackObservations, mirrored: bool) -> None:
    rig, values, config = fit.rig, fit.values, fit.config
    frames = len(obs)
    end = start + frames
    geometry, ref = rig.geometry, rig.reference
    p = result.parameters
    in_ref = mirror_points(result.joints.cpu().numpy(), mirrored)
    world = geometry.to_world(in_ref.astype(float), ref)
    vertices = geometry.to_world(mirror_points(result.vertices.cpu().numpy(), mirrored), ref)
    orient_ref = roma.rotvec_to_rotmat(torch.as_tensor(
        mirror_rotations(p.global_orient.cpu().numpy(), mirrored))).numpy()
    orient_world = roma.rotmat_to_rotvec(torch.as_tensor(
        geometry.R[ref].T @ orient_ref)).numpy()
    quality = track_quality(result, obs, config.reconstruct.quality_scale,
                            config.reconstruct.quality_teacher_scale)
    present = obs.present.cpu().numpy()
    v = {"present": True, "interpolated": ~present, "quality": quality,
         "joints_world": world, "vertices_world": vertices,
         "global_orient_world": orient_world,
         "hand_pose": mirror_rotations(p.hand_pose.cpu().numpy(), mirrored),
         "betas": p.betas.expand(frames, -1).cpu().numpy(),
         "skeleton": (np.nan if p.skeleton is None
                      else p.skeleton.expand(frames, -1, -1).cpu().numpy()),
         "scale": np.full(frames, float(p.log_scale.exp()))}
    for key, value in v.items():
        values[key][start:end, hand] = value
    for camera in range(len(geometry)):
        here = geometry.to_camera(world, camera)
        values["joints_camera"][start:end, hand, camera] = here
        values["keypoints_2d"][start:end, hand, camera] = geometry.project(here, camera)
    values["reprojection_px"][start:end, hand] = _per_view_error(result, obs, geometry, ref)


def _per_view_error(result: FitResult, obs, geometry: RigGeometry, ref: int) -> np.ndarray:
    """(T, C) weighted reprojection error of the fit in each camera (undistorted pixels)."""
    errors = np.full((len(obs), len(geometry)), np.nan)
    own = reprojection_px(result.projected, obs.keypoints, obs.weights).cpu().numpy()
    errors[:, ref] = np.where(obs.present.cpu().numpy(), own, np.nan)
    others = [c for c in range(len(geometry)) if c != ref]
    for camera, view in zip(others, obs.views, strict=True):
        projected = project_in_front(view.joints_here(result.joints), view.K)
        error = reprojection_px(projected, view.keypoints, view.weights).cpu().numpy()
        errors[:, camera] = np.where(view.present.cpu().numpy(), error, np.nan)
    return errors
