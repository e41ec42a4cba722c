"""Rounds of fit and training on the gesture clip: the network learns from the job's own
labels, the fit takes the network's 3D as evidence, trusted as far as the video's detections
say; the rounds stage keeps each round in the store, the labels of the last round that
helped, and reruns exactly."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from prefect.task_runners import ThreadPoolTaskRunner

from handlabel.flows.progress import snapshot
from handlabel.flows.status import rounds_line
from handlabel.models.metrics.keypoints3d import procrustes_errors
from handlabel.models.training.prediction import predict_crops
from handlabel.storage.hand_crops import hand_index, read_hands, read_label_targets
from handlabel.storage.store import DatasetStore
from handlabel.storage.verify import check_array, mark_for_repair, verify_store
from handlabel.tasks.export import rounds_table
from handlabel.tasks.export_video import export_is_current
from handlabel.tasks.reconstruct import reconstruct_is_current
from handlabel.tasks.rounds import (
    RUNNING,
    RoundCheck,
    accept_round,
    mark_failed,
    read_record,
    write_record,
)
from handlabel.tasks.train import LabelRound, train_store
from handlabel.tasks.trained_model import load_trained_model

from .pipeline_runs import CONFIG, export_here, exported

pytestmark = pytest.mark.slow

# 20 hands: one step an epoch
TRAIN = CONFIG.train.model_copy(update={"epochs": 30, "lr_milestones": [25]})
LABELS = LabelRound(labels_2d=0.01, labels_3d=10.0, min_quality=0.1)


@pytest.fixture(scope="module")
def store(gesture_store, tmp_path_factory) -> DatasetStore:
    copy = tmp_path_factory.mktemp("rounds") / "store"
    shutil.copytree(gesture_store, copy)
    return DatasetStore(str(copy))


def _labelled_hands(store: DatasetStore):
    videos = list(store.manifest.table()["video_id"])
    hands = read_hands(store, hand_index(store, videos))
    return videos, hands, read_label_targets(store, hands.index, LABELS.min_quality)


def _distance_to_labels(store: DatasetStore, hands, targets) -> float:
    """The trained network's mean PA-MPJPE (mm) from the labels, on the labelled crops."""
    net, size = load_trained_model(store)
    pred = predict_crops(net, torch.from_numpy(hands.images), torch.from_numpy(hands.K), size)
    taught = targets.weight > 0
    return float(procrustes_errors(pred.joints_3d.numpy()[taught].astype(float),
                                   targets.joints[taught].astype(float)).mean())


def test_the_network_learns_the_labels_and_the_fit_takes_its_3d_as_evidence(store):
    videos, hands, targets = _labelled_hands(store)
    labels = store.stage(videos[0], "reconstruct")
    taught = targets.weight > 0
    frames, slots = hands.index["frame"].to_numpy(), hands.index["slot"].to_numpy()
    # labels fitted to a detection teach, except on the self-check's hidden frames; the
    # gesture clip is a right hand: no mirror
    hidden = np.isfinite(labels.read("selfcheck_px")[frames, slots])
    assert hidden.sum() >= 2 and not taught[hidden].any()
    assert taught[~hidden].sum() >= 0.7 * (~hidden).sum()  # 13 of 17 here
    np.testing.assert_allclose(targets.joints[taught],
                               labels.read("joints_3d")[frames, slots][taught], atol=1e-6)

    train_store(store, videos, TRAIN, overwrite=True)
    detections_only = _distance_to_labels(store, hands, targets)
    identity = store.model().attrs["identity"]
    assert train_store(store, videos, TRAIN, labels=LABELS) == "trained"
    taught_by_labels = _distance_to_labels(store, hands, targets)
    assert taught_by_labels < 0.8 * detections_only, (taught_by_labels, detections_only)
    assert store.model().attrs["identity"] != identity  # the labels after it are stale
    assert train_store(store, videos, TRAIN, labels=LABELS) == "skipped"

    from handlabel.tasks.reconstruct import (
        finish_reconstruct,
        fit_reconstruct,
        prepare_reconstruct,
        reconstruct_chunk,
    )

    present = labels.read("present")
    data = CONFIG.reconstruct.model_dump()
    data["fit"]["weights"]["network_3d"] = 1.0
    config = type(CONFIG.reconstruct).model_validate(data)
    for video in videos:
        for chunk in prepare_reconstruct(store, video, config, False):
            reconstruct_chunk(store, video, chunk, config)
        fit_reconstruct(store, video, config)
        finish_reconstruct(store, video)
    refitted = store.stage(videos[0], "reconstruct")
    assert 0 < refitted.attrs["network_trust"] <= 1
    np.testing.assert_array_equal(refitted.read("present"), present)


def _with_rounds(count: int, min_gain: float = 0.02):
    data = CONFIG.model_dump()
    data["train"]["rounds"].update(count=count, min_gain=min_gain)
    return type(CONFIG).model_validate(data)


def _rounds(store: DatasetStore, config):
    from handlabel.flows.rounds import rounds_flow

    return rounds_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=1))(
        store.url, config, return_state=True)


def _arrays(store: DatasetStore, video: str, group: str) -> dict[str, np.ndarray]:
    labels = store.stage(video, group)
    return {k: labels.read(k) for k in ("present", "joints_3d", "quality", "selfcheck_px")}


def _assert_same(a: dict, b: dict) -> None:
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_rounds_stage_keeps_every_round_and_the_labels_of_the_last_that_helped(
        gesture_store, prefect_api, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(gesture_store, copy)
    store = DatasetStore(str(copy))
    video = store.videos_done("reconstruct")[0]
    round_0 = _arrays(store, video, "reconstruct")
    before = store.labels_version(video)
    assert not read_record(store)  # no rounds asked for: the pipeline made none

    # a round must lower the self-check by 99% to be kept: made, stored, not kept
    hard = _with_rounds(1, min_gain=0.99)
    state = _rounds(store, hard)
    assert state.is_completed(), state.message
    record = read_record(store)
    assert [(r["round"], r["kept"]) for r in record["rounds"]] == [(0, True), (1, False)]
    assert record["kept"] == 0 and record["rounds"][0]["frames"] > 0
    assert store.model("s2hand-round1").attrs["complete"]
    _assert_same(_arrays(store, video, "rounds/0/labels"), round_0)
    round_1 = _arrays(store, video, "rounds/1/labels")
    assert not np.array_equal(round_1["joints_3d"], round_0["joints_3d"], equal_nan=True)
    _assert_same(_arrays(store, video, "reconstruct"), round_0)
    assert store.labels_version(video) == before
    table, note = rounds_table(record)  # the report's
    assert list(table["kept"]) == [True, False] and "round 0" in note
    line = rounds_line(store.root)  # the status's
    assert line.startswith("rounds: labels from round 0;") and "round 1" in line
    assert "(not kept)" in line

    # the same config again: current, nothing redone
    written = store.stage(video, "rounds/1/labels").attrs["inputs"]
    assert "current" in _rounds(store, hard).message
    assert store.stage(video, "rounds/1/labels").attrs["inputs"] == written

    # a kept round's labels become the video's: reconstruct stays current, what reads the
    # labels is stale
    assert export_is_current(store, video, CONFIG.export)
    accept_round(store, video, 1)
    _assert_same(_arrays(store, video, "reconstruct"), round_1)
    assert reconstruct_is_current(store, video, CONFIG.reconstruct)
    assert store.labels_version(video) != before
    assert not export_is_current(store, video, CONFIG.export)
    assert export_here(store).is_completed()  # the dataset takes the round's labels
    summary = pd.read_parquet(exported(store, "videos.parquet")).set_index("video_id")
    assert summary.loc[video, "labels_round"] == 1
    hands = pd.read_parquet(exported(store, f"videos/{video}/hands.parquet"))
    first = hands.iloc[0]
    np.testing.assert_allclose(np.reshape(first["joints_3d"], (21, 3)),
                               round_1["joints_3d"][first["frame"], int(first["side"] == "right")],
                               atol=1e-6)

    # verify: a damaged round is redone from the labels' stage, a round's model with the rounds
    damaged_copy = tmp_path / "damaged"
    shutil.copytree(copy, damaged_copy)
    damaged_store = DatasetStore(str(damaged_copy))
    for array in (f"videos/{video}/rounds/1/labels/joints_3d", "models/s2hand-round1/"):
        folder = damaged_copy / array
        obj = next(p for p in sorted(folder.rglob("*")) if p.is_file() and "c" in p.parts)
        obj.write_bytes(obj.read_bytes()[:-8] + bytes(8))
    report = verify_store(damaged_store, lambda jobs: [check_array(damaged_store.url, job)
                                                       for job in jobs])
    damaged = {f.array.rsplit("/", 1)[0] for f in report.findings}
    assert damaged == {f"videos/{video}/rounds/1/labels", "models/s2hand-round1"}, damaged
    assert mark_for_repair(damaged_store, report) == []
    assert damaged_store.manifest.get(video)["reconstruct_state"] == "failed"
    assert not read_record(damaged_store)["complete"]
    assert not damaged_store.model("s2hand-round1").attrs["complete"]

    # no rounds asked for now: round 0's labels come back; the export of round 1's is stale
    state = _rounds(store, CONFIG)
    assert state.is_completed(), state.message
    _assert_same(_arrays(store, video, "reconstruct"), round_0)
    assert store.labels_version(video) == before
    assert not export_is_current(store, video, CONFIG.export)
    assert read_record(store)["kept"] == 0
    # ... and the rounds beyond the config's count are gone from the store
    assert store.stage(video, "rounds/1/labels") is None
    assert not store.has_model("s2hand-round1")

    # while rounds run, the live display shows them; a failed run's record does not
    write_record(store, "running", [RoundCheck(0, 4, 1.0, 1.0, kept=True)], False, RUNNING)
    line = next(p for p in snapshot(store, hard) if p.stage == "rounds")
    assert (line.done, line.total, line.unit) == (0, 1, "rounds")
    assert line.note == "round 1: training its network, epoch 0/2"
    mark_failed(store, "a worker was lost")
    assert all(p.stage != "rounds" for p in snapshot(store, hard))
    assert "failed: a worker was lost" in rounds_line(store.root)
