"""Failures inside a pipeline run on real clips: a failing video leaves the others
complete, a task that fails once is retried, an interrupted run resumes to the same dataset,
a failed finish fails its stage; and new videos labelled with a store's model as it is."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

import handlabel.tasks.export_video as export_task
import handlabel.tasks.reconstruct as reconstruct_task
from handlabel.config import FitConfig, ReconstructConfig
from handlabel.storage.store import DatasetStore

from .conftest import GESTURE_AVI
from .pipeline_runs import (
    CONFIG,
    FLOAT_ROUNDING,
    STAGES,
    assert_parameters_give_joints,
    exported,
    finished,
    run,
)


def test_a_failing_video_leaves_the_others_complete_and_a_rerun_completes_it(
        prefect_api, mirrored_clip, monkeypatch, tmp_path):
    store = tmp_path / "store"
    real = reconstruct_task.reconstruct_chunk
    broken = {}

    def fail_for_mirrored(dataset, video_id, chunk, config):
        row = dataset.manifest.get(video_id)
        if row["name"] == mirrored_clip.name:
            broken[video_id] = True
            raise OSError("disk full")
        return real(dataset, video_id, chunk, config)

    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", fail_for_mirrored)
    state = run([GESTURE_AVI, mirrored_clip], store)
    assert state.is_failed() and "disk full" in state.message
    table = DatasetStore(str(store)).manifest.table().set_index("name")
    assert table.loc[GESTURE_AVI.name, "export_state"] == "done"
    assert table.loc[mirrored_clip.name, "reconstruct_state"] == "failed"
    assert "disk full" in table.loc[mirrored_clip.name, "reconstruct_error"]

    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", real)
    state = run([GESTURE_AVI, mirrored_clip], store)
    assert state.is_completed(), state.message
    table = DatasetStore(str(store)).manifest.table()
    assert (table["export_state"] == "done").all()
    hands = pd.read_parquet(f"{store}/export/hands.parquet")
    assert set(hands["video_name"]) == {GESTURE_AVI.name, mirrored_clip.name}


def test_new_videos_are_labelled_with_the_stores_model_as_it_is(gesture_store, mirrored_clip,
                                                                prefect_api, tmp_path):
    """``handlabel label``'s run: the new video is ingested, detected, weighted, labelled
    and exported with the model the store has (its checkpoint and identity unchanged), the
    videos already there keep their labels, and the dataset files cover both."""
    from typer.testing import CliRunner

    from handlabel.flows.cli import app

    refused = CliRunner().invoke(app, ["label", str(tmp_path / "nothing"), str(mirrored_clip)])
    assert refused.exit_code == 2 and "nothing" in refused.output

    store = tmp_path / "store"
    shutil.copytree(gesture_store, store)
    dataset = DatasetStore(str(store))
    identity = dataset.model().attrs["identity"]
    before = finished(store)
    state = run([mirrored_clip], store, skip=("train",))
    assert state.is_completed(), state.message
    assert dataset.model().attrs["identity"] == identity
    after = finished(store)
    kept = [f"{s}_finished" for s in STAGES if s != "export"]
    assert after.loc[GESTURE_AVI.name, kept].equals(before.loc[GESTURE_AVI.name, kept]), \
        "the labels already there are kept"
    new = after.loc[mirrored_clip.name]
    assert new.drop("train_finished").notna().all(), "every stage but train ran for it"
    assert pd.isna(new["train_finished"]), "the model was not trained on it"
    hands = pd.read_parquet(f"{store}/export/hands.parquet")
    assert set(hands["video_name"]) == {GESTURE_AVI.name, mirrored_clip.name}
    sides = hands.groupby("video_name")["side"].unique()
    assert list(sides[mirrored_clip.name]) == ["left"], "the mirror image of a right hand"
    assert list(sides[GESTURE_AVI.name]) == ["right"]
    assert_parameters_give_joints(hands)


def test_a_task_that_fails_once_is_retried(complete_store, monkeypatch):
    real, calls = export_task.export_chunk, []

    def flaky(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 1:
            raise ConnectionError("object store hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(export_task, "export_chunk", flaky)
    state = run([GESTURE_AVI], complete_store.url, first_stage="export",
                overwrite_stage="export")
    assert state.is_completed(), state.message
    chunks = complete_store.video(complete_store.manifest.table()["video_id"].iloc[0]).n_chunks
    assert sorted(calls) == sorted([0, *range(chunks)]), "the failed chunk ran twice"


def test_an_interrupted_run_resumes_to_the_same_dataset(complete_store, monkeypatch, tmp_path):
    store = tmp_path / "store"
    real, seen = reconstruct_task.reconstruct_chunk, []

    def die_after_first_chunk(dataset, video_id, chunk, config):
        seen.append(chunk)
        if chunk != 0:
            raise RuntimeError("worker killed")
        return real(dataset, video_id, chunk, config)

    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", die_after_first_chunk)
    assert run([GESTURE_AVI], store).is_failed()
    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", real)
    resumed_chunks = []
    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk",
                        lambda d, v, c, cfg: resumed_chunks.append(c) or real(d, v, c, cfg))
    assert run([GESTURE_AVI], store).is_completed()
    assert 0 not in resumed_chunks, "the chunk done before the interruption is kept"

    expected = pd.read_parquet(exported(complete_store, "hands.parquet"))
    got = pd.read_parquet(f"{store}/export/hands.parquet")
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected)
    for column in ("keypoints_2d", "joints_3d", "quality", "hand_pose", "betas"):
        np.testing.assert_allclose(np.stack(got[column]).astype(float),
                                   np.stack(expected[column]).astype(float), atol=1e-4,
                                   rtol=FLOAT_ROUNDING, err_msg=column)


def test_a_failed_finish_fails_the_stage(complete_store, monkeypatch):
    """A finish task that cannot record the outcome must not leave the stage Completed with
    the video's row still 'running'."""
    def broken_record(*args, **kwargs):
        raise OSError("manifest write refused")

    monkeypatch.setattr(reconstruct_task, "finish_reconstruct", broken_record)
    refit = CONFIG.model_copy(update={"reconstruct": ReconstructConfig(fit=FitConfig(steps=30))})
    state = run([GESTURE_AVI], complete_store.url, refit)
    assert not state.is_completed()
    assert "finish" in state.message and "manifest write refused" in state.message
