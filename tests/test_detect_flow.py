"""The detect and weight stages in the pipeline flow on Prefect + Dask, on a real clip."""

from __future__ import annotations

import numpy as np
import pytest

from handlabel.config import CompressionConfig, HandlabelConfig, IngestConfig, TrainConfig
from handlabel.models.crops import crop_affine, to_crop
from handlabel.storage.store import DatasetStore

from .conftest import GESTURE_AVI

# a tiny network, so that the pipeline's train stage takes seconds
SMALL_TRAIN = TrainConfig(epochs=2, encoder_width=4, input_size=64, render_size=32)


@pytest.fixture
def pipeline(dask_cluster):
    from handlabel.flows.pipeline import run_pipeline

    def run(sources, store, overwrite=False):
        # lossless frames: the counts below are the detector's on this noisy 320x240 clip, where
        # H.264 changes which frames are found (docs/accuracy.md, "The frame codec")
        ingest = IngestConfig(chunk_frames=8, compression=CompressionConfig(codec="zstd"))
        config = HandlabelConfig(ingest=ingest, train=SMALL_TRAIN)
        return run_pipeline([str(s) for s in sources], str(store), config, overwrite,
                            dask_address=dask_cluster.scheduler_address)

    return run


def arrays(store, stage):
    dataset = DatasetStore(str(store))
    video_id = dataset.manifest.table()["video_id"][0]
    return dataset, video_id, dataset.stage(video_id, stage)


def test_pipeline_detects_tracks_crops_and_weights_a_real_clip(pipeline, sample, tmp_path):
    store = tmp_path / "store"
    state = pipeline([GESTURE_AVI], store)
    assert state.is_completed(), state.message
    dataset, video_id, detect = arrays(store, "detect")
    row = dataset.manifest.get(video_id)
    assert row["detect_state"] == row["weight_state"] == "done"

    present = detect.read("present")
    assert present.shape == (20, 2)
    assert present[:, 1].sum() >= 15, "the right hand is found in most frames"
    assert present[:, 0].sum() <= 2, "spurious left detections stay rare"
    assert row["detect_hand_frames"] == present.any(1).sum()

    keypoints, crops = detect.read("keypoints"), detect.read("crops")
    crop_kp, mirrored = detect.read("crop_keypoints"), detect.read("mirrored")
    for t, slot in np.argwhere(present):
        assert mirrored[t, slot] == (slot == 0)
        box = detect.read("box")[t, slot]
        center, side = (box[:2] + box[2:]) / 2, box[2] - box[0]
        affine = crop_affine(center, side, 224, bool(mirrored[t, slot]))
        np.testing.assert_allclose(crop_kp[t, slot], to_crop(keypoints[t, slot, :, :2], affine),
                                   atol=1e-3)
        assert crops[t, slot].std() > 10, "crops show image content"
    assert np.isnan(keypoints[~present]).all()
    world, world_confidence = detect.read("world"), detect.read("world_confidence")
    assert np.isfinite(world[present]).all() and np.isnan(world[~present]).all()
    palm = np.linalg.norm(world[present][:, 9] - world[present][:, 0], axis=-1)
    assert ((palm > 0.05) & (palm < 0.13)).all(), "metric hands"
    assert ((world_confidence[present] >= 0) & (world_confidence[present] <= 1)).all()

    weight = dataset.stage(video_id, "weight")
    joint = weight.read("joint")
    np.testing.assert_array_equal(joint[~present], 0)
    assert np.allclose(joint[present] <= keypoints[present][..., 2] ** 2 + 1e-6, True)
    assert 0 < row["weight_mean_joint"] <= 1

    assert row["train_state"] == "done"
    model = dataset.model()
    usable = present & (joint.mean(-1) >= SMALL_TRAIN.min_joint_weight)
    assert model.attrs["complete"] and model.attrs["samples"] == usable.sum() > 0
    assert list(model.read_metrics()["epoch"]) == [0, 1]


def test_detect_resumes_only_missing_chunks_and_reruns_skip(pipeline, sample, tmp_path):
    store = tmp_path / "store"
    pipeline([GESTURE_AVI], store)
    dataset, video_id, detect = arrays(store, "detect")
    before = detect.read("keypoints")
    finished = dataset.manifest.get(video_id)["detect_finished"]

    state = pipeline([GESTURE_AVI], store)  # nothing to do
    assert state.is_completed()
    assert dataset.manifest.get(video_id)["detect_finished"] == finished

    detect.group["chunk_done"][1] = False  # as if the worker died on chunk 1
    detect.group["keypoints"][8:16] = np.nan
    dataset.manifest.upsert(video_id, detect_state="running")
    state = pipeline([GESTURE_AVI], store)
    assert state.is_completed(), state.message
    after = arrays(store, "detect")[2].read("keypoints")
    np.testing.assert_allclose(after, before, equal_nan=True, atol=1e-3)
    row = dataset.manifest.get(video_id)
    assert row["detect_state"] == "done" and row["detect_finished"] > finished
    assert row["weight_finished"] > row["detect_finished"], "weights follow the new detection"
