"""Reconstruct stage, in two steps per video:

1. per chunk, the trained network on every hand crop, results mapped back to the frame's
   camera (left hands un-mirrored): ``videos/<id>/network/``;
2. per video, the sequence fit of every tracked hand (``hand_fit``), which writes the labels:
   ``videos/<id>/reconstruct/`` (with ``reconstruct.fit.enabled: false``, the network's
   predictions themselves).

The network step's chunks are kept across fit changes: a new fit configuration refits
without running the network again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from prefect import get_run_logger, task

from handlabel.config import HandlabelConfig, ReconstructConfig
from handlabel.keys import stage_key
from handlabel.models.fit.selfcheck import summarise
from handlabel.models.geometry import project
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.hand.sides import mirror_points, mirror_rotations
from handlabel.models.keypoints import hand_sizes
from handlabel.models.network import S2HandNet, S2HandPrediction
from handlabel.models.refine import refine
from handlabel.models.tracking import N_SLOTS
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.setup import pick_device
from handlabel.storage.manifest import StageState
from handlabel.storage.model_store import MODEL
from handlabel.storage.stage_arrays import ArraySpec, StageArrays
from handlabel.storage.store import DatasetStore

from .hand_fit import fit_video
from .retry import retry_transient
from .selfcheck import selfcheck_video
from .trained_model import load_trained_model

STAGE = "reconstruct"
NETWORK = "network"  # the network step's arrays


@dataclass(frozen=True)
class LabelSource:
    """Which model labels a video and where its two steps write: the network step's group
    and the labels' group under ``videos/<id>/``. The reconstruct stage's is ``ROUND_0``;
    each later round of fit and training has its own (``tasks/rounds.py``)."""

    model: str = MODEL
    network: str = NETWORK
    labels: str = STAGE


ROUND_0 = LabelSource()


def reconstruct_spec(n_vertices: int, n_shape: int, n_joints: int | None = None
                     ) -> dict[str, ArraySpec]:
    """Per frame, axis 1 the slot (0 left, 1 right); camera frame of the video, metres. With
    ``n_joints`` (the labels, not the network step): the track's skeleton, the offsets of the
    hand model's ``n_joints`` rest joints (metres at unit scale, before ``scale``)."""
    nan = np.nan
    labels_only = {} if n_joints is None else {
        "skeleton": ArraySpec((N_SLOTS, n_joints, 3), "float32", nan),
        # the video's track the hand belongs to (numbered over both slots), -1: none
        "track": ArraySpec((N_SLOTS,), "int32", -1),
        # per joint: seen in the frame, as far as the evidence says (models/fit/visibility.py)
        "visible": ArraySpec((N_SLOTS, 21), "bool", False),
        # the self-check's hidden frames (models/fit/selfcheck.py): pixels from the hidden
        # detections of the fit without them, and of straight-line interpolation
        "selfcheck_px": ArraySpec((N_SLOTS,), "float32", nan),
        "selfcheck_interpolation_px": ArraySpec((N_SLOTS,), "float32", nan),
    }
    return labels_only | {
        "present": ArraySpec((N_SLOTS,), "bool", False),
        "joints_3d": ArraySpec((N_SLOTS, 21, 3), "float32", nan),
        "vertices": ArraySpec((N_SLOTS, n_vertices, 3), "float32", nan),
        "global_orient": ArraySpec((N_SLOTS, 3), "float32", nan),
        "hand_pose": ArraySpec((N_SLOTS, 15, 3), "float32", nan),
        "betas": ArraySpec((N_SLOTS, n_shape), "float32", nan),
        "translation": ArraySpec((N_SLOTS, 3), "float32", nan),
        "scale": ArraySpec((N_SLOTS,), "float32", nan),
        "albedo": ArraySpec((N_SLOTS, n_vertices, 3), "uint8", 0),
        "light": ArraySpec((N_SLOTS, 11), "float32", nan),
        "keypoints_2d": ArraySpec((N_SLOTS, 21, 2), "float32", nan),
        "reprojection_px": ArraySpec((N_SLOTS,), "float32", nan),
        "quality": ArraySpec((N_SLOTS,), "float32", 0.0),
        # frames without a detection inside a track, filled by the fit's temporal terms
        "interpolated": ArraySpec((N_SLOTS,), "bool", False),
        "teacher_residual": ArraySpec((N_SLOTS,), "float32", nan),  # fit vs the detector's 3D
    }


def model_version(store: DatasetStore, model: str = MODEL) -> str:
    """The identity of the store's trained ``model`` (an error where it is not complete)."""
    attrs = store.model(model).attrs if store.has_model(model) else {}
    if not attrs.get("complete") or not attrs.get("identity"):
        raise RuntimeError(f"{store.url}: no completely trained model; run train first")
    return attrs["identity"]


def _inputs(store: DatasetStore, video_id: str, model: str = MODEL) -> str:
    row = store.manifest.get(video_id)
    return (f"{row['weight_config_hash']}@{row['weight_finished']}"
            f"|model {model_version(store, model)}")


def _network_key(config: ReconstructConfig) -> str:
    """What decides the network step's output, besides its inputs."""
    return stage_key(f"{STAGE}.{NETWORK}", config.model_dump(
        mode="json", include={"refine_steps", "refine_lr", "quality_scale"}))


def reconstruct_is_current(store: DatasetStore, video_id: str, config: ReconstructConfig
                           ) -> bool:
    """Whether the video's labels are done with this config, its current weights and the
    store's current model (False when there is no trained model)."""
    labels, row = store.stage(video_id, STAGE), store.manifest.get(video_id)
    if labels is None or row is None or not labels.attrs.get("complete") \
            or row["reconstruct_state"] != StageState.DONE:
        return False
    try:
        inputs = _inputs(store, video_id)
    except RuntimeError:  # no trained model
        return False
    return (labels.attrs.get("config_hash") == stage_key(STAGE, config)
            and labels.attrs.get("inputs") == inputs)


def is_current(store: DatasetStore, video_id: str, config: HandlabelConfig) -> bool:
    """The stage registry's currency test (flows/stages.py)."""
    return reconstruct_is_current(store, video_id, config.reconstruct)


def prepare_reconstruct(store: DatasetStore, video_id: str, config: ReconstructConfig,
                        overwrite: bool) -> list[int] | None:
    """Network chunks still to do (possibly none, when only the fit is to redo); None when
    the video's labels are done with this config, these weights and this model."""
    if not overwrite and reconstruct_is_current(store, video_id, config):
        return None
    config_hash, inputs = stage_key(STAGE, config), _inputs(store, video_id)
    network = store.stage(video_id, NETWORK)
    if (network is not None and not overwrite and network.attrs.get("inputs") == inputs
            and network.attrs.get("config_hash") == _network_key(config)):
        todo = sorted(set(range(network.n_chunks)) - network.done_chunks())
    else:
        _create_arrays(store, video_id, NETWORK, {"config_hash": _network_key(config),
                                                  "inputs": inputs})
        todo = list(range(store.stage(video_id, NETWORK).n_chunks))
    store.manifest.start_stage(video_id, STAGE, config_hash)
    return todo


def _create_arrays(store: DatasetStore, video_id: str, name: str, attrs: dict,
                   source: LabelSource = ROUND_0):
    net, _ = _network(store.url, model_version(store, source.model), source.model)
    video = store.video(video_id)
    joints = len(net.hand_model.parents) if name == source.labels else None
    spec = reconstruct_spec(int(net.appearance.n_vertices), net.hand_model.n_shape, joints)
    return store.create_stage(video_id, name, n_frames=video.n_frames,
                              chunk_frames=video.chunk_frames, spec=spec, attrs=attrs)


@functools.lru_cache(maxsize=2)
def _network(store_url: str, version: str, model: str = MODEL) -> tuple[S2HandNet, int]:
    """The store's trained network, loaded once per worker process and model version."""
    return load_trained_model(DatasetStore(store_url, create=False), model=model)


def reconstruct_chunk(store: DatasetStore, video_id: str, chunk: int,
                      config: ReconstructConfig, source: LabelSource = ROUND_0) -> int:
    """The network step on the hands of one chunk; returns how many."""
    net, input_size = _network(store.url, model_version(store, source.model), source.model)
    video, detect = store.video(video_id), store.stage(video_id, "detect")
    start = chunk * video.chunk_frames
    stop = min(start + video.chunk_frames, video.n_frames)
    arrays = store.stage(video_id, source.network)
    spec = reconstruct_spec(arrays.group["vertices"].shape[2], arrays.group["betas"].shape[2])
    out = {k: np.full((stop - start, *s.tail), s.fill_value, s.dtype) for k, s in spec.items()}
    present = detect.read("present", start, stop)
    frames, slots = np.nonzero(present)
    if len(frames):
        weights = store.stage(video_id, "weight").read("joint", start, stop)[frames, slots]
        pick = {k: detect.read(k, start, stop)[frames, slots]
                for k in ("crops", "crop_K", "crop_keypoints", "mirrored", "keypoints")}
        pred = _predict(net, input_size, pick, weights, config)
        _write_hands(out, frames, slots, pred, pick, weights,
                     np.asarray(video.attrs["K"], dtype=np.float32), config)
    arrays.write_chunk(chunk, start, out)
    return len(frames)


def network_step(store: DatasetStore, video_id: str, config: ReconstructConfig,
                 source: LabelSource) -> int:
    """The network step of every chunk of a video afresh with ``source``'s model (a round's,
    whose network changed: nothing to keep); returns the hands."""
    arrays = _create_arrays(store, video_id, source.network, {
        "config_hash": _network_key(config), "inputs": _inputs(store, video_id, source.model)},
        source)
    return sum(reconstruct_chunk(store, video_id, chunk, config, source)
               for chunk in range(arrays.n_chunks))


def fit_reconstruct(store: DatasetStore, video_id: str, config: ReconstructConfig,
                    source: LabelSource = ROUND_0) -> int:
    """The labels of a video from its network step: the sequence fit of every track, or the
    network's predictions themselves when the fit is off. Returns the hands written."""
    network = store.stage(video_id, source.network)
    if network is None or network.done_chunks() != set(range(network.n_chunks)):
        raise RuntimeError(f"{video_id}: the network step is incomplete; rerun reconstruct")
    labels = _create_arrays(store, video_id, source.labels, {
        "config_hash": stage_key(STAGE, config),
        "inputs": _inputs(store, video_id, source.model)}, source)
    keys = list(reconstruct_spec(1, 1)) if not config.fit.enabled else ["albedo", "light"]
    video = store.video(video_id)
    for start in range(0, video.n_frames, video.chunk_frames):
        stop = min(start + video.chunk_frames, video.n_frames)
        for key in keys:
            labels.group[key][start:stop] = network.read(key, start, stop)
    written = int(network.read("present").sum())
    for key in ("selfcheck_px", "selfcheck_interpolation_px"):
        labels.group[key][:] = np.nan  # every chunk written, hidden spans or not (integrity)
    if config.fit.enabled:
        net, _ = _network(store.url, model_version(store, source.model), source.model)
        written = fit_video(store, video_id, net.hand_model, config, labels, source.network)
        selfcheck_video(store, video_id, net.hand_model, config, labels, source.network)
    labels.group["chunk_done"][:] = True
    return written


def _predict(net, input_size, pick, weights, config) -> S2HandPrediction:
    device = pick_device(config.device)
    K = torch.from_numpy(pick["crop_K"]).float()
    pred = predict_crops(net, torch.from_numpy(pick["crops"]), K, input_size,
                         config.batch_size, device)
    if config.refine_steps:
        pred = refine(net.hand_model.cpu(), pred, torch.from_numpy(pick["crop_keypoints"]),
                      torch.from_numpy(np.sqrt(weights)), K, model_limit_frames(net.hand_model),
                      config.refine_steps, config.refine_lr)
    return pred


def _write_hands(out, frames, slots, pred, pick, weights, K, config) -> None:
    left = pick["mirrored"]  # crops of left hands show the mirrored scene
    joints = mirror_points(pred.joints_3d.numpy(), left)
    keypoints_2d = project(torch.from_numpy(joints), torch.from_numpy(K).expand(len(joints), 3, 3)
                           ).numpy()
    detected = pick["keypoints"][..., :2]
    distance = np.linalg.norm(keypoints_2d - detected, axis=-1)
    error_px = (distance * weights).sum(-1) / np.maximum(weights.sum(-1), 1e-8)
    size = np.maximum(hand_sizes(detected), 1.0)
    values = {
        "present": True, "joints_3d": joints,
        "vertices": mirror_points(pred.vertices.numpy(), left),
        "global_orient": mirror_rotations(pred.global_orient.numpy(), left),
        "hand_pose": mirror_rotations(pred.hand_pose.numpy(), left), "betas": pred.betas.numpy(),
        "translation": mirror_points(pred.translation.numpy(), left),
        "scale": pred.scale.numpy(),
        "albedo": np.round(pred.albedo.numpy() * 255).astype(np.uint8),
        "light": pred.light.numpy(), "keypoints_2d": keypoints_2d, "reprojection_px": error_px,
        "quality": np.exp(-error_px / size / config.quality_scale),
    }
    for key, value in values.items():
        out[key][frames, slots] = value


def finish_reconstruct(store: DatasetStore, video_id: str, error: str | None = None) -> dict:
    row = store.manifest.get(video_id)
    stats = {}
    arrays = store.stage(video_id, STAGE)
    if error is None and (arrays is None or arrays.done_chunks() != set(range(arrays.n_chunks))):
        error = "the fit reported done but wrote no complete labels (its worker lost?); rerun"
    if error is None:
        arrays.update_attrs(complete=True)
        stats = label_stats(arrays)
    return store.manifest.finish_stage(video_id, STAGE, row["reconstruct_started"], error,
                                       **stats)


def label_stats(labels: StageArrays) -> dict:
    """The manifest's summary of a video's labels (none where it has no hand)."""
    present = labels.read("present")
    if not present.any():
        return {}
    detected = present & ~labels.read("interpolated")
    measured = labels.read("reprojection_px")[detected]
    measured = measured[np.isfinite(measured)]
    return {"reconstruct_mean_quality": float(labels.read("quality")[present].mean()),
            "reconstruct_median_reprojection_px": float(np.median(measured))
            if len(measured) else None,
            "reconstruct_interpolated": int((present & ~detected).sum()),
            **_selfcheck_stats(labels)}


def _selfcheck_stats(labels: StageArrays) -> dict:
    if "selfcheck_px" not in labels.group:  # the network's labels (fit off): no self-check
        return {}
    check = summarise(labels.read("selfcheck_px"), labels.read("selfcheck_interpolation_px"))
    return {"reconstruct_selfcheck_frames": check.frames,
            "reconstruct_selfcheck_px": check.labels_px if check.frames else None,
            "reconstruct_selfcheck_interpolation_px": check.interpolation_px
            if check.frames else None}


@task(name="reconstruct-prepare", task_run_name="reconstruct-prepare {video_id}")
def prepare_reconstruct_task(store_url: str, video_id: str, config: ReconstructConfig,
                             overwrite: bool = False) -> list[int] | None:
    return prepare_reconstruct(DatasetStore(store_url), video_id, config, overwrite)


@task(name="reconstruct-chunks", task_run_name="reconstruct {video_id} chunks {chunks}",
      retries=1, retry_delay_seconds=1, retry_condition_fn=retry_transient)
def reconstruct_chunk_task(store_url: str, video_id: str, chunks: list[int],
                           config: ReconstructConfig) -> int:
    store = DatasetStore(store_url)
    found = sum(reconstruct_chunk(store, video_id, chunk, config) for chunk in chunks)
    get_run_logger().info("%s: chunks %s, %d hands reconstructed", video_id, chunks, found)
    return found


@task(name="reconstruct-fit", task_run_name="reconstruct-fit {video_id}", retries=1,
      retry_delay_seconds=1, retry_condition_fn=retry_transient)
def fit_reconstruct_task(store_url: str, video_id: str, config: ReconstructConfig) -> int:
    written = fit_reconstruct(DatasetStore(store_url), video_id, config)
    get_run_logger().info("%s: %d hands labelled", video_id, written)
    return written


@task(name="reconstruct-finish", task_run_name="reconstruct-finish {video_id}")
def finish_reconstruct_task(store_url: str, video_id: str, error: str | None = None) -> dict:
    return finish_reconstruct(DatasetStore(store_url), video_id, error)
