"""The detect and weight stages in the pipeline flow on Prefect + Dask, on a real clip."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from handlabel.config import (
    CompressionConfig,
    DaskConfig,
    FitConfig,
    HandlabelConfig,
    IngestConfig,
    ReconstructConfig,
    TrainConfig,
)
from handlabel.models.crops import crop_affine, to_crop
from handlabel.storage.store import DatasetStore

from .conftest import GESTURE_AVI

# a tiny network, so that the pipeline's train stage takes seconds
SMALL_TRAIN = TrainConfig(epochs=2, encoder_width=4, input_size=64, render_size=32)


# lossless frames: the counts below are the detector's on this noisy 320x240 clip, where
# H.264 changes which frames are found (docs/accuracy.md, "The frame codec"); the chunked
# stages as an archive runs them: all of a video's chunks in one task (a run)
CONFIG = HandlabelConfig(ingest=IngestConfig(chunk_frames=8,
                                             compression=CompressionConfig(codec="zstd")),
                         train=SMALL_TRAIN,
                         reconstruct=ReconstructConfig(fit=FitConfig(steps=40)),
                         dask=DaskConfig(chunk_tasks_per_stage=1))


@pytest.fixture(scope="module")
def piped(dask_cluster, tmp_path_factory, sample):
    """The gesture clip through the whole pipeline on the session's Dask workers, once."""
    from handlabel.flows.pipeline import run_pipeline

    store = tmp_path_factory.mktemp("detect") / "store"
    state = run_pipeline([str(GESTURE_AVI)], str(store), CONFIG,
                         dask_address=dask_cluster.scheduler_address)
    return store, state


def arrays(store, stage):
    dataset = DatasetStore(str(store))
    video_id = dataset.manifest.table()["video_id"][0]
    return dataset, video_id, dataset.stage(video_id, stage)


def test_pipeline_detects_tracks_crops_and_weights_a_real_clip(piped):
    store, state = piped
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
    frames, colours = dataset.video(video_id).read(0, 20), detect.read("joint_colour")
    for t, slot in np.argwhere(present):  # the colour is the frame's, at the joint
        x, y = np.round(keypoints[t, slot, :, :2]).astype(int).T
        pixel = frames[t, y.clip(0, frames.shape[1] - 1), x.clip(0, frames.shape[2] - 1)]
        near = np.abs(colours[t, slot].astype(int) - pixel).max(-1) <= 25
        assert near.mean() >= 0.8, f"frame {t}: {near.mean():.2f} of joints match"

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


def test_detect_resumes_only_missing_chunks_and_reruns_skip(piped, dask_cluster, tmp_path):
    """On a copy of the piped store: detect again does nothing; with chunk 1's record gone
    (as if its worker died) detect redoes that chunk alone, to the same keypoints as when it
    ran in a run of three, and the weights follow the new detection."""
    from handlabel.flows.pipeline import run_stage

    store = tmp_path / "store"
    shutil.copytree(piped[0], store)

    def stage(name: str):
        state = run_stage(name, str(store), CONFIG, dask_address=dask_cluster.scheduler_address)
        assert state.is_completed(), state.message

    dataset, video_id, detect = arrays(store, "detect")
    before = detect.read("keypoints")
    finished = dataset.manifest.get(video_id)["detect_finished"]
    stage("detect")  # nothing to do
    assert dataset.manifest.get(video_id)["detect_finished"] == finished

    detect.group["chunk_done"][1] = False  # as if the worker died on chunk 1
    detect.group["keypoints"][8:16] = np.nan
    dataset.manifest.upsert(video_id, detect_state="running")
    chunk_files = {p: p.stat().st_mtime_ns
                   for c in (0, 2) for p in (store / "videos" / video_id / "detect" / "keypoints"
                                             / "c" / str(c)).rglob("*") if p.is_file()}
    stage("detect")
    stage("weight")
    after = arrays(store, "detect")[2].read("keypoints")
    np.testing.assert_allclose(after, before, equal_nan=True, atol=1e-3)
    assert {p: p.stat().st_mtime_ns for p in chunk_files} == chunk_files, \
        "the chunks done before are not detected again"
    row = dataset.manifest.get(video_id)
    assert row["detect_state"] == "done" and row["detect_finished"] > finished
    assert row["weight_finished"] > row["detect_finished"], "weights follow the new detection"
