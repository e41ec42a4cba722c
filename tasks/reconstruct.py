"""Reconstruct stage: per chunk, the trained network on every hand crop, results mapped back
to the frame's camera (left hands un-mirrored) and written per frame and hand."""

from __future__ import annotations

import functools

import numpy as np
import torch
from prefect import get_run_logger, task

from handlabel.config import ReconstructConfig, stage_config_hash
from handlabel.models.geometry import project
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.network import S2HandNet, S2HandPrediction
from handlabel.models.refine import refine
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.setup import pick_device
from handlabel.models.weights import hand_sizes
from handlabel.storage.manifest import StageState
from handlabel.storage.stage_arrays import ArraySpec
from handlabel.storage.store import DatasetStore

from .trained_model import load_trained_model

STAGE = "reconstruct"
SLOTS = 2
MIRROR = np.array([-1.0, 1.0, 1.0], dtype=np.float32)
# axis-angle of the mirrored rotation M R M (M = diag(-1, 1, 1)): the left-hand convention
MIRROR_ROTVEC = np.array([1.0, -1.0, -1.0], dtype=np.float32)


def reconstruct_spec(n_vertices: int, n_shape: int) -> dict[str, ArraySpec]:
    """Per frame, axis 1 the slot (0 left, 1 right); camera frame of the video, metres."""
    nan = np.nan
    return {
        "present": ArraySpec((SLOTS,), "bool", False),
        "joints_3d": ArraySpec((SLOTS, 21, 3), "float32", nan),
        "vertices": ArraySpec((SLOTS, n_vertices, 3), "float32", nan),
        "global_orient": ArraySpec((SLOTS, 3), "float32", nan),
        "hand_pose": ArraySpec((SLOTS, 15, 3), "float32", nan),
        "betas": ArraySpec((SLOTS, n_shape), "float32", nan),
        "translation": ArraySpec((SLOTS, 3), "float32", nan),
        "scale": ArraySpec((SLOTS,), "float32", nan),
        "albedo": ArraySpec((SLOTS, n_vertices, 3), "uint8", 0),
        "light": ArraySpec((SLOTS, 11), "float32", nan),
        "keypoints_2d": ArraySpec((SLOTS, 21, 2), "float32", nan),
        "reprojection_px": ArraySpec((SLOTS,), "float32", nan),
        "quality": ArraySpec((SLOTS,), "float32", 0.0),
    }


def model_version(store: DatasetStore) -> str:
    attrs = store.model().attrs if store.has_model() else {}
    if not attrs.get("complete"):
        raise RuntimeError(f"{store.url}: no completely trained model; run train first")
    return f"{attrs['config_hash']}@{attrs['latest']}"


def _inputs(store: DatasetStore, video_id: str) -> str:
    row = store.manifest.get(video_id)
    return f"{row['weight_config_hash']}@{row['weight_finished']}|model {model_version(store)}"


def prepare_reconstruct(store: DatasetStore, video_id: str, config: ReconstructConfig,
                        overwrite: bool) -> list[int] | None:
    """Chunks still to reconstruct; None when the video is done with this config, these
    weights and this model."""
    config_hash, inputs = stage_config_hash(STAGE, config), _inputs(store, video_id)
    arrays, row = store.stage(video_id, STAGE), store.manifest.get(video_id)
    if (arrays is not None and not overwrite and arrays.attrs.get("config_hash") == config_hash
            and arrays.attrs.get("inputs") == inputs):
        todo = sorted(set(range(arrays.n_chunks)) - arrays.done_chunks())
        if not todo and row["reconstruct_state"] == StageState.DONE:
            return None
    else:
        net, _ = _network(store.url, model_version(store))
        video = store.video(video_id)
        n_vertices = int(net.appearance.n_vertices)
        arrays = store.create_stage(
            video_id, STAGE, n_frames=video.n_frames, chunk_frames=video.chunk_frames,
            spec=reconstruct_spec(n_vertices, net.hand_model.n_shape),
            attrs={"config_hash": config_hash, "inputs": inputs})
        todo = list(range(arrays.n_chunks))
    store.manifest.start_stage(video_id, STAGE, config_hash)
    return todo


@functools.lru_cache(maxsize=2)
def _network(store_url: str, version: str) -> tuple[S2HandNet, int]:
    """The store's trained network, loaded once per worker process and model version."""
    return load_trained_model(DatasetStore(store_url, create=False))


def reconstruct_chunk(store: DatasetStore, video_id: str, chunk: int,
                      config: ReconstructConfig) -> int:
    """Reconstruct the hands of one chunk; returns how many."""
    net, input_size = _network(store.url, model_version(store))
    video, detect = store.video(video_id), store.stage(video_id, "detect")
    start = chunk * video.chunk_frames
    stop = min(start + video.chunk_frames, video.n_frames)
    arrays = store.stage(video_id, STAGE)
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
    flip = np.where(pick["mirrored"][:, None, None], MIRROR, 1.0).astype(np.float32)
    rot_flip = np.where(pick["mirrored"][:, None, None], MIRROR_ROTVEC, 1.0).astype(np.float32)
    joints = pred.joints_3d.numpy() * flip
    keypoints_2d = project(torch.from_numpy(joints), torch.from_numpy(K).expand(len(joints), 3, 3)
                           ).numpy()
    detected = pick["keypoints"][..., :2]
    distance = np.linalg.norm(keypoints_2d - detected, axis=-1)
    error_px = (distance * weights).sum(-1) / np.maximum(weights.sum(-1), 1e-8)
    size = np.maximum(hand_sizes(detected), 1.0)
    values = {
        "present": True, "joints_3d": joints, "vertices": pred.vertices.numpy() * flip,
        "global_orient": pred.global_orient.numpy() * rot_flip[:, 0],
        "hand_pose": pred.hand_pose.numpy() * rot_flip, "betas": pred.betas.numpy(),
        "translation": pred.translation.numpy() * flip[:, 0], "scale": pred.scale.numpy(),
        "albedo": np.round(pred.albedo.numpy() * 255).astype(np.uint8),
        "light": pred.light.numpy(), "keypoints_2d": keypoints_2d, "reprojection_px": error_px,
        "quality": np.exp(-error_px / size / config.quality_scale),
    }
    for key, value in values.items():
        out[key][frames, slots] = value


def finish_reconstruct(store: DatasetStore, video_id: str, error: str | None = None) -> dict:
    row = store.manifest.get(video_id)
    stats = {}
    if error is None:
        arrays = store.stage(video_id, STAGE)
        arrays.update_attrs(complete=True)
        present = arrays.read("present")
        if present.any():
            stats = {"reconstruct_mean_quality": float(arrays.read("quality")[present].mean()),
                     "reconstruct_median_reprojection_px": float(
                         np.median(arrays.read("reprojection_px")[present]))}
    return store.manifest.finish_stage(video_id, STAGE, row["reconstruct_started"], error,
                                       **stats)


@task(name="reconstruct-prepare", task_run_name="reconstruct-prepare {video_id}")
def prepare_reconstruct_task(store_url: str, video_id: str, config: ReconstructConfig,
                             overwrite: bool = False) -> list[int] | None:
    return prepare_reconstruct(DatasetStore(store_url), video_id, config, overwrite)


@task(name="reconstruct-chunk", task_run_name="reconstruct {video_id} chunk {chunk}",
      retries=1, retry_delay_seconds=1)
def reconstruct_chunk_task(store_url: str, video_id: str, chunk: int,
                           config: ReconstructConfig) -> int:
    found = reconstruct_chunk(DatasetStore(store_url), video_id, chunk, config)
    get_run_logger().info("%s: chunk %d, %d hands reconstructed", video_id, chunk, found)
    return found


@task(name="reconstruct-finish", task_run_name="reconstruct-finish {video_id}")
def finish_reconstruct_task(store_url: str, video_id: str, error: str | None = None) -> dict:
    return finish_reconstruct(DatasetStore(store_url), video_id, error)
