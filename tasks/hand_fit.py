"""Reconstruct's second step for one video: the sequence fit of every tracked hand, from the
network's per-crop predictions (``videos/<id>/network/``), the detections, their weights and
the detector's 3D, into the labels (``videos/<id>/reconstruct/``).

A slot's frames are cut into tracks at gaps longer than ``fit.max_gap_s``; a track longer
than ``fit.window_frames`` is fitted window by window, each window starting from the shape and
size of the one before. Left hands are fitted as right hands in the mirrored camera, as the
network sees them, and mirrored back.
"""

from __future__ import annotations

import numpy as np
import torch

from handlabel.config import FitConfig, ReconstructConfig
from handlabel.models.fit.covered import covered_detections
from handlabel.models.fit.cuts import CutThresholds, evidence_cuts
from handlabel.models.fit.network_trust import network_error, network_trust
from handlabel.models.fit.quality import track_quality
from handlabel.models.fit.sequence import FitWeights
from handlabel.models.fit.terms import reprojection_px
from handlabel.models.fit.track import taken_by_other, track_spans
from handlabel.models.fit.visibility import joint_visibility
from handlabel.models.fit.window import (
    NETWORK_EVIDENCE,
    NETWORK_START,
    Carried,
    WindowArrays,
    solve_windows,
    window_evidence,
    without_frames,
)
from handlabel.models.hand.base import HandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.hand.sides import mirror_points, mirror_rotations
from handlabel.models.training.setup import pick_device
from handlabel.models.weights import UNLIKE_HAND
from handlabel.storage.frames import frame_interval
from handlabel.storage.stage_arrays import StageArrays
from handlabel.storage.store import DatasetStore


def fit_video(store: DatasetStore, video_id: str, hand_model: HandModel,
              config: ReconstructConfig, labels: StageArrays, network: str = "network") -> int:
    """Fit every track of the video into ``labels`` from the network step in ``network``;
    returns the number of hands written (detected and interpolated). The tracks' windows
    are solved together, round by round: every track's first window, then the second
    windows of the tracks that have one, each starting from its track's shape and size so
    far."""
    device = pick_device(config.device)
    hand_model = hand_model.to(device)
    limit_frames = model_limit_frames(hand_model).to(device)
    tracks = video_tracks(store, video_id, config.fit)
    windows = [[(start, min(start + config.fit.window_frames, stop))
                for start in range(first, stop, config.fit.window_frames)]
               for _, first, stop in tracks]
    total = sum(stop - first for _, first, stop in tracks)
    trust = (video_network_trust(store, video_id, network)
             if config.fit.weights.network_3d > 0 else 0.0)
    labels.update_attrs(network_trust=trust)
    carried: list[Carried | None] = [None] * len(tracks)
    written = 0
    labels.record_step_progress(0, total)
    for step in range(max((len(w) for w in windows), default=0)):
        todo = [k for k in range(len(tracks)) if step < len(windows[k])]
        spans = [windows[k][step] for k in todo]
        frames = sum(stop - start for start, stop in spans)
        loaded = [fitted_window(store, video_id, tracks[k][0], start, stop, config.fit, network)
                  for k, (start, stop) in zip(todo, spans, strict=True)]
        evidence = [window_evidence(arrays, device, trust) for arrays, _ in loaded]
        solved = solve_windows(
            hand_model, evidence, limit_frames, fit_weights_of(config.fit), config.fit.steps,
            config.fit.learning_rate, [carried[k] for k in todo], config.fit.carry_unseen,
            lambda share, before=written, frames=frames: labels.record_step_progress(
                before + round(share * frames), total))
        for k, (start, _), (_, unlike), window, result in zip(todo, spans, loaded, evidence,
                                                               solved, strict=True):
            if result is not None:
                carried[k] = result[1]
                _write_window(labels, (tracks[k][0], k), start, result[0], window.obs,
                              window.mirrored, unlike, config)
        written += frames
        labels.record_step_progress(written, total)
    return written


def video_tracks(store: DatasetStore, video_id: str, fit: FitConfig
                 ) -> list[tuple[int, int, int]]:
    """(slot, first frame, stop frame) of every track the fit labels, slot by slot."""
    detect = store.stage(video_id, "detect")
    times = store.video(video_id).timestamps()
    present, boxes = detect.read("present"), detect.read("box")
    keypoints = detect.read("keypoints")[..., :2]
    tracks = []
    for slot in range(present.shape[1]):
        other = 1 - slot
        blocked = taken_by_other(boxes[:, slot], present[:, slot], boxes[:, other],
                                 present[:, other])
        cuts = track_cuts(keypoints[:, slot], present[:, slot], times, fit)
        tracks += [(slot, first, stop) for first, stop in track_spans(
            present[:, slot], times, fit.max_gap_s, blocked, cuts)]
    return tracks


def window_arrays(store: DatasetStore, video_id: str, slot: int, start: int, stop: int,
                  network_group: str = "network") -> WindowArrays:
    """What the fit of frames [start, stop) of a slot reads from the store (the network's
    predictions from ``network_group``)."""
    detect, network = store.stage(video_id, "detect"), store.stage(video_id, network_group)
    video = store.video(video_id)

    def read(stage, key):
        return stage.read(key, start, stop)[:, slot]

    return WindowArrays(
        keypoints=read(detect, "keypoints")[..., :2],
        weights=read(store.stage(video_id, "weight"), "joint"),
        world=read(detect, "world"), world_confidence=read(detect, "world_confidence"),
        present=read(detect, "present"), mirrored=read(detect, "mirrored"),
        times=video.timestamps()[start:stop],
        K=np.asarray(video.attrs["K"], dtype=np.float32),
        network={k: read(network, k) for k in NETWORK_START + NETWORK_EVIDENCE})


def fitted_window(store: DatasetStore, video_id: str, slot: int, start: int, stop: int,
                  fit: FitConfig, network: str = "network") -> tuple[WindowArrays, np.ndarray]:
    """What the fit of frames [start, stop) of a slot uses: ``window_arrays`` without the
    detections an object covers (``fit.covered_share``; their 3D kept with
    ``fit.covered_teacher``), and which joints look covered
    (T, 21) bool (the weight stage's ``UNLIKE_HAND`` flag)."""
    flags = store.stage(video_id, "weight").read("flags", start, stop)[:, slot]
    unlike = (flags & UNLIKE_HAND) > 0
    arrays = window_arrays(store, video_id, slot, start, stop, network)
    if fit.covered_share is not None:
        covered = covered_detections(arrays.present, unlike.mean(-1), arrays.times,
                                     fit.covered_share, fit.covered_edge_share,
                                     fit.covered_edge_s)
        arrays = without_frames(arrays, covered, keep=NETWORK_EVIDENCE,
                                keep_teacher=fit.covered_teacher)
    return arrays, unlike


def video_network_trust(store: DatasetStore, video_id: str, network_group: str = "network"
                        ) -> float:
    """The video's trust in the network's 3D (``network_trust.py``): its projected joints
    (the network step in ``network_group``) against the video's own detections, both
    slots."""
    detect = store.stage(video_id, "detect")
    network = store.stage(video_id, network_group).read("keypoints_2d")
    error = network_error(network.reshape(-1, 21, 2),
                          detect.read("keypoints")[..., :2].reshape(-1, 21, 2),
                          store.stage(video_id, "weight").read("joint").reshape(-1, 21))
    return network_trust(error)


def fit_weights_of(config: FitConfig) -> FitWeights:
    return FitWeights(**config.weights.model_dump())


def _write_window(labels, slot_track, start, result, obs, mirrored, unlike, config):
    slot, track = slot_track
    p = result.parameters
    present = obs.present.cpu().numpy()
    frames = len(present)
    error_px = reprojection_px(result.projected, obs.keypoints, obs.weights).cpu().numpy()
    residual = result.teacher_residual.cpu().numpy()
    quality = track_quality(result, obs, config.quality_scale, config.quality_teacher_scale)
    values = {
        "present": np.ones(frames, bool), "interpolated": ~present,
        "joints_3d": mirror_points(result.joints.cpu().numpy(), mirrored),
        "vertices": mirror_points(result.vertices.cpu().numpy(), mirrored),
        "global_orient": mirror_rotations(p.global_orient.cpu().numpy(), mirrored),
        "hand_pose": mirror_rotations(p.hand_pose.cpu().numpy(), mirrored),
        "betas": p.betas.expand(frames, -1).cpu().numpy(),
        "skeleton": (np.nan if p.skeleton is None
                     else p.skeleton.expand(frames, -1, -1).cpu().numpy()),
        "translation": mirror_points(p.anchor.cpu().numpy(), mirrored),
        "scale": np.full(frames, float(p.log_scale.exp())),
        "keypoints_2d": result.projected.cpu().numpy(),
        "reprojection_px": np.where(present, error_px, np.nan),
        "teacher_residual": np.where(present, residual, np.nan),
        "quality": quality,
        "track": np.full(frames, track, np.int32),
        "visible": joint_visibility(result.projected, obs.keypoints, obs.weights,
                                    obs.hand_size, obs.present,
                                    torch.as_tensor(unlike, device=obs.present.device)
                                    ).cpu().numpy(),
    }
    for key, value in values.items():
        labels.group[key][start : start + frames, slot] = value


def track_cuts(keypoints: np.ndarray, present: np.ndarray, times: np.ndarray, fit: FitConfig
               ) -> np.ndarray | None:
    """(T,) the detected frames that start a new track (``fit.cuts``; None: off), cuts
    holding at the scale of ``fit.cut_settle_s`` at the video's frame rate (``times``, s)."""
    if not fit.cuts:
        return None
    interval = frame_interval(times)
    settle = round(fit.cut_settle_s / interval) if interval > 0 else 0
    return evidence_cuts(keypoints, present,
                         CutThresholds(fit.cut_shape, fit.cut_position, fit.cut_size), settle)
