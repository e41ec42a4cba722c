"""Reconstruct's second step for one video: the sequence fit of every tracked hand, from the
network's per-crop predictions (``videos/<id>/network/``), the detections, their weights and
the detector's 3D, into the labels (``videos/<id>/reconstruct/``).

A slot's frames are cut into tracks at gaps longer than ``fit.max_gap_s``; a track longer
than ``fit.window_frames`` is fitted window by window, each window starting from the shape and
size of the one before. Left hands are fitted as right hands in the mirrored camera, as the
network sees them, and mirrored back.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from handlabel.config import FitConfig, ReconstructConfig
from handlabel.models.fit.placement import place_world
from handlabel.models.fit.quality import hand_quality
from handlabel.models.fit.sequence import FitParameters, FitWeights, TrackObservations, fit_track
from handlabel.models.fit.terms import reprojection_px
from handlabel.models.fit.track import taken_by_other, track_spans, track_start
from handlabel.models.hand.base import HandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.training.setup import pick_device
from handlabel.models.weights import hand_sizes
from handlabel.storage.stage_arrays import StageArrays
from handlabel.storage.store import DatasetStore

MIRROR = np.array([-1.0, 1.0, 1.0], dtype=np.float32)
# axis-angle of the mirrored rotation M R M (M = diag(-1, 1, 1)): the left-hand convention
MIRROR_ROTVEC = np.array([1.0, -1.0, -1.0], dtype=np.float32)
NETWORK_START = ("global_orient", "hand_pose", "translation", "scale")


def fit_video(store: DatasetStore, video_id: str, hand_model: HandModel,
              config: ReconstructConfig, labels: StageArrays) -> int:
    """Fit every track of the video into ``labels``; returns the number of hands written
    (detected and interpolated)."""
    video, detect = store.video(video_id), store.stage(video_id, "detect")
    times = video.timestamps()
    present, boxes = detect.read("present"), detect.read("box")
    K = np.asarray(video.attrs["K"], dtype=np.float32)
    device = pick_device(config.device)
    hand_model = hand_model.to(device)
    limit_frames = model_limit_frames(hand_model).to(device)
    written = 0
    for slot in range(present.shape[1]):
        other = 1 - slot
        blocked = taken_by_other(boxes[:, slot], present[:, slot], boxes[:, other],
                                 present[:, other])
        for first, stop in track_spans(present[:, slot], times, config.fit.max_gap_s,
                                       blocked):
            shape = None
            for start in range(first, stop, config.fit.window_frames):
                end = min(start + config.fit.window_frames, stop)
                shape = _fit_window(store, video_id, slot, start, end, K, hand_model,
                                    limit_frames, config, labels, shape, device)
                written += end - start
    return written


def _observations(store, video_id, slot, start, stop, K, device):
    detect = store.stage(video_id, "detect")
    read = {k: detect.read(k, start, stop)[:, slot] for k in
            ("present", "keypoints", "world", "world_confidence", "mirrored")}
    weights = store.stage(video_id, "weight").read("joint", start, stop)[:, slot]
    present = read["present"]
    mirrored = bool(read["mirrored"][present].any())
    keypoints = read["keypoints"][..., :2]
    teacher = read["world"] * (MIRROR if mirrored else 1.0)
    camera = K @ np.diag(MIRROR) if mirrored else K

    def tensor(values):
        return torch.as_tensor(np.nan_to_num(np.asarray(values, np.float32)), device=device)

    obs = TrackObservations(
        keypoints=tensor(keypoints), weights=tensor(np.where(present[:, None], weights, 0)),
        teacher=tensor(teacher), teacher_confidence=tensor(
            np.where(present[:, None] & np.isfinite(teacher).all(-1),
                     read["world_confidence"], 0)),
        hand_size=tensor(np.nan_to_num(hand_sizes(keypoints), nan=1.0)),
        times=torch.as_tensor(store.video(video_id).timestamps()[start:stop], device=device,
                              dtype=torch.float32),
        K=torch.as_tensor(camera, device=device))
    placed = np.full((stop - start, 21, 3), np.nan, np.float32)
    for i in np.flatnonzero(present & np.isfinite(read["world"]).all(-1).all(-1)):
        camera_joints = place_world(read["world"][i], keypoints[i], K)
        if camera_joints is not None:
            placed[i] = camera_joints * (MIRROR if mirrored else 1.0)
    return obs, torch.as_tensor(placed, device=device), mirrored, weights, present


def _network_start(store, video_id, slot, start, stop, mirrored, device):
    network = store.stage(video_id, "network")
    values = {k: network.read(k, start, stop)[:, slot] for k in NETWORK_START}
    flip, rot_flip = (MIRROR, MIRROR_ROTVEC) if mirrored else (1.0, 1.0)

    def tensor(values):
        return torch.as_tensor(np.asarray(values, np.float32), device=device)

    parameters = FitParameters(tensor(values["global_orient"] * rot_flip),
                               tensor(values["hand_pose"] * rot_flip),
                               tensor(values["translation"] * flip), torch.zeros(0),
                               torch.tensor(0.0))
    return parameters, tensor(values["scale"])


def _fit_window(store, video_id, slot, start, stop, K, hand_model, limit_frames,
                config: ReconstructConfig, labels: StageArrays, shape, device):
    obs, placed, mirrored, weights, present = _observations(store, video_id, slot, start, stop,
                                                            K, device)
    fit_weights = fit_weights_of(config.fit)
    network, network_scale = _network_start(store, video_id, slot, start, stop, mirrored,
                                            device)
    begun = track_start(hand_model, obs, placed, network, network_scale, limit_frames,
                        fit_weights)
    if begun is None:
        return shape
    initial, size_prior = begun
    if shape is not None:  # a later window of a long track: the track's shape and size
        initial = replace(initial, betas=shape.betas, log_scale=shape.log_scale)
        size_prior = shape.log_scale
    result = fit_track(hand_model, obs, initial, limit_frames, fit_weights, size_prior,
                       config.fit.steps, config.fit.learning_rate)
    _write_window(labels, slot, start, result, obs, weights, present, mirrored, config)
    return result.parameters


def fit_weights_of(config: FitConfig) -> FitWeights:
    return FitWeights(**config.weights.model_dump())


def _write_window(labels, slot, start, result, obs, weights, present, mirrored, config):
    flip, rot_flip = (MIRROR, MIRROR_ROTVEC) if mirrored else (1.0, 1.0)
    p = result.parameters
    frames = len(present)
    error_px = reprojection_px(result.projected, obs.keypoints, obs.weights).cpu().numpy()
    size = np.maximum(obs.hand_size.cpu().numpy(), 1.0)
    residual = result.teacher_residual.cpu().numpy()
    quality = hand_quality(np.nan_to_num(weights).mean(-1), error_px / size, residual,
                           ~present, config.quality_scale, config.quality_teacher_scale)
    values = {
        "present": np.ones(frames, bool), "interpolated": ~present,
        "joints_3d": result.joints.cpu().numpy() * flip,
        "vertices": result.vertices.cpu().numpy() * flip,
        "global_orient": p.global_orient.cpu().numpy() * rot_flip,
        "hand_pose": p.hand_pose.cpu().numpy() * rot_flip,
        "betas": p.betas.expand(frames, -1).cpu().numpy(),
        "translation": p.anchor.cpu().numpy() * flip,
        "scale": np.full(frames, float(p.log_scale.exp())),
        "keypoints_2d": result.projected.cpu().numpy(),
        "reprojection_px": np.where(present, error_px, np.nan),
        "teacher_residual": np.where(present, residual, np.nan),
        "quality": quality,
    }
    for key, value in values.items():
        labels.group[key][start : start + frames, slot] = value
