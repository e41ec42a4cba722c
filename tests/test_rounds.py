"""A round of fit and training on the gesture clip (issue 26): the network learns from the
job's own labels, and the fit takes the network's 3D as evidence, trusted as far as the
video's detections say."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from handlabel.models.metrics.keypoints3d import procrustes_errors
from handlabel.models.training.prediction import predict_crops
from handlabel.storage.hand_crops import hand_index, read_hands, read_label_targets
from handlabel.storage.store import DatasetStore
from handlabel.tasks.train import LabelRound, train_store
from handlabel.tasks.trained_model import load_trained_model

from .pipeline_runs import CONFIG

pytestmark = pytest.mark.slow

# 20 hands: one step an epoch
TRAIN = CONFIG.train.model_copy(update={"epochs": 30, "lr_milestones": [25]})
LABELS = LabelRound(labels_2d=0.01, labels_3d=10.0)


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
    # labels fitted to a detection teach; the gesture clip is a right hand: no mirror
    assert taught.sum() >= 0.8 * len(hands.index)
    frames, slots = hands.index["frame"].to_numpy(), hands.index["slot"].to_numpy()
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
