"""Weight stage: per video, supervision weights for every detected hand (models.weights)."""

from __future__ import annotations

import numpy as np
from prefect import task

from handlabel.config import HandlabelConfig, WeightConfig
from handlabel.keys import stage_key
from handlabel.models.detectors import NUM_JOINTS
from handlabel.models.tracking import N_SLOTS
from handlabel.models.weights import UNLIKE_HAND, WeightParams, supervision_weights
from handlabel.storage.manifest import StageState
from handlabel.storage.stage_arrays import ArraySpec
from handlabel.storage.store import DatasetStore

from .retry import retry_transient

STAGE = "weight"
SPEC = {
    "joint": ArraySpec((N_SLOTS, NUM_JOINTS), "float32", 0.0),
    "bone": ArraySpec((N_SLOTS, NUM_JOINTS - 1), "float32", 0.0),
    "sample": ArraySpec((N_SLOTS,), "float32", 0.0),
    "flags": ArraySpec((N_SLOTS, NUM_JOINTS), "uint8", 0),
}


def weight_is_current(store: DatasetStore, video_id: str, config: WeightConfig) -> bool:
    """Whether the video's weights are done with this config from its current detections."""
    row, current = store.manifest.get(video_id), store.stage(video_id, STAGE)
    return (current is not None and row is not None and row["weight_state"] == StageState.DONE
            and current.attrs.get("config_hash") == stage_key(STAGE, config)
            and current.attrs.get("detect_version") == _detect_version(row))


def is_current(store: DatasetStore, video_id: str, config: HandlabelConfig) -> bool:
    """The stage registry's currency test (flows/stages.py)."""
    return weight_is_current(store, video_id, config.weight)


def weight_video(store: DatasetStore, video_id: str, config: WeightConfig, overwrite: bool) -> str:
    """Compute and store the weights of one video; returns 'weighted' or 'skipped'."""
    if not overwrite and weight_is_current(store, video_id, config):
        return "skipped"
    config_hash = stage_key(STAGE, config)
    row = store.manifest.get(video_id)
    inputs = _detect_version(row)
    started = store.manifest.start_stage(video_id, STAGE, config_hash)
    try:
        detections = store.stage(video_id, "detect")
        if detections is None or not detections.attrs.get("complete"):
            raise RuntimeError(f"{video_id}: detect is not complete; run detect first")
        values = _weights(detections.read("keypoints"), detections.read("present"),
                          detections.read("joint_colour"), config)
        arrays = store.create_stage(
            video_id, STAGE, n_frames=len(values["joint"]),
            chunk_frames=store.video(video_id).chunk_frames, spec=SPEC,
            attrs={"config_hash": config_hash, "detect_version": inputs})
        arrays.write_all(values)
        arrays.update_attrs(complete=True)
    except Exception as exc:
        store.manifest.finish_stage(video_id, STAGE, started, error=f"{video_id}: {exc}")
        raise
    store.manifest.finish_stage(video_id, STAGE, started, **_summary(values, detections))
    return "weighted"


def _detect_version(row: dict) -> str:
    """What the weights were computed from: detect's config and when it last finished (a
    resumed or redone detection changes the second)."""
    return f"{row['detect_config_hash']}@{row['detect_finished']}"


def _weights(keypoints: np.ndarray, present: np.ndarray, colours: np.ndarray,
             config: WeightConfig) -> dict:
    params = WeightParams(**config.model_dump())
    per_slot = [supervision_weights(keypoints[:, s, :, :2], keypoints[:, s, :, 2], present[:, s],
                                    params, colours[:, s]) for s in range(N_SLOTS)]
    return {key: np.stack([w[key] for w in per_slot], axis=1) for key in SPEC}


def _summary(values: dict, detections) -> dict:
    present = detections.read("present")
    if not present.any():
        return {"weight_mean_joint": None, "weight_outlier_fraction": None,
                "weight_gated_fraction": None, "weight_unlike_fraction": None}
    return {
        "weight_mean_joint": float(values["joint"][present].mean()),
        "weight_outlier_fraction": float((values["flags"][present] > 0).mean()),
        "weight_gated_fraction": float((values["sample"][present] == 0).mean()),
        "weight_unlike_fraction": float(((values["flags"][present] & UNLIKE_HAND) > 0).mean()),
    }


@task(name="weight-video", task_run_name="weight {video_id}", retries=1,
      retry_condition_fn=retry_transient)
def weight_video_task(store_url: str, video_id: str, config: WeightConfig,
                      overwrite: bool = False) -> str:
    return weight_video(DatasetStore(store_url), video_id, config, overwrite)
