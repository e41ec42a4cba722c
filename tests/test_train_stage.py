"""The train stage on a real clip's crops: checkpoints and metrics in the store, an interrupted
training resumes to the same network, and a finished one is skipped."""

from __future__ import annotations

import pytest
import torch

from handlabel.config import HandlabelConfig, IngestConfig, TrainConfig
from handlabel.models.training.setup import checkpoint_from_bytes
from handlabel.storage.store import DatasetStore
from handlabel.tasks.train import train_store
from handlabel.tasks.trained_model import NoTrainedModel, load_trained_model

from .conftest import GESTURE_AVI

TRAIN = TrainConfig(epochs=3, encoder_width=4, input_size=64, render_size=32, batch_size=8)


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def weighted_store(dask_cluster, tmp_path_factory, sample):
    from handlabel.flows.ingest import run_ingest
    from handlabel.flows.pipeline import run_stage

    store = str(tmp_path_factory.mktemp("train") / "store")
    config = HandlabelConfig(ingest=IngestConfig(chunk_frames=8))
    run_ingest([str(GESTURE_AVI)], store, config, dask_address=dask_cluster.scheduler_address)
    for stage in ("detect", "weight"):
        assert run_stage(stage, store, config, dask_address=dask_cluster.scheduler_address
                         ).is_completed()
    return DatasetStore(store)


def network_state(store: DatasetStore) -> dict:
    return checkpoint_from_bytes(store.model().latest_checkpoint())["net"]


def test_interrupted_training_resumes_to_the_same_network(weighted_store):
    store = weighted_store
    videos = list(store.manifest.table()["video_id"])
    assert train_store(store, videos, TRAIN, overwrite=True) == "trained"
    uninterrupted = network_state(store)

    def stop_after_first_epoch(metrics, rows):
        if metrics["epoch"] == 0:
            raise Interrupted("worker lost")

    with pytest.raises(Interrupted):
        train_store(store, videos, TRAIN, overwrite=True, on_epoch=stop_after_first_epoch)
    row = store.manifest.get(videos[0])
    assert row["train_state"] == "failed" and "worker lost" in row["train_error"]
    assert store.model().attrs["epochs_done"] == 1 and not store.model().attrs["complete"]

    assert train_store(store, videos, TRAIN) == "trained"
    resumed = network_state(store)
    for name, value in uninterrupted.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=0, msg=name)
    metrics = store.model().read_metrics()
    assert list(metrics["epoch"]) == [0, 1, 2]
    assert store.manifest.get(videos[0])["train_state"] == "done"

    assert train_store(store, videos, TRAIN) == "skipped"
    changed = TRAIN.model_copy(update={"seed": 1})
    assert train_store(store, videos, changed) == "trained", "a config change retrains"


def test_trained_model_loads_for_prediction_and_a_missing_one_is_named(weighted_store,
                                                                        tmp_path):
    videos = list(weighted_store.manifest.table()["video_id"])
    train_store(weighted_store, videos, TRAIN)
    net, input_size = load_trained_model(weighted_store)
    assert input_size == 64 and not net.training
    with pytest.raises(NoTrainedModel, match="no trained model"):
        load_trained_model(DatasetStore(str(tmp_path / "empty")))


def test_retraining_on_new_inputs_gives_a_new_identity_under_the_same_checkpoint_name(
        weighted_store, dask_cluster):
    """The stale-labels case: a retraining with the same epochs on inputs of another version
    writes a checkpoint of the same name, so a name-based model version would call the old
    labels current. The identity (inputs and checkpoint content) changes, and reconstruct
    keys its labels by it."""
    from handlabel.flows.pipeline import run_stage
    from handlabel.tasks.reconstruct import model_version

    store = weighted_store
    videos = list(store.manifest.table()["video_id"])
    train_store(store, videos, TRAIN)
    first = store.model().attrs
    config = HandlabelConfig(ingest=IngestConfig(chunk_frames=8))
    assert run_stage("weight", store.url, config, overwrite=True,
                     dask_address=dask_cluster.scheduler_address).is_completed()
    assert train_store(store, videos, TRAIN) == "trained"
    second = store.model().attrs
    assert second["latest"] == first["latest"], "same epochs: same checkpoint name"
    assert second["identity"] != first["identity"]
    assert model_version(store) == second["identity"]


def test_training_starts_from_the_shipped_pretrained_network_where_it_fits(weighted_store):
    """Width 16 (the demo preset's) starts from the synthetic-pretrained network: with a
    vanishing learning rate the trained convolutions are still the shipped ones; with
    pretrained off they are a random initialisation, and the training key differs."""
    from handlabel.models.training.setup import pretrained_checkpoint
    from handlabel.tasks.train import initial_weights, training_key

    store = weighted_store
    videos = list(store.manifest.table()["video_id"])
    shipped = torch.load(pretrained_checkpoint(), weights_only=True)["net"]
    still = TrainConfig(epochs=1, encoder_width=16, input_size=64, render_size=32,
                        batch_size=8, learning_rate=1e-12)
    assert initial_weights(still) == (pretrained_checkpoint(), None)
    assert train_store(store, videos, still, overwrite=True) == "trained"
    name = "encoder.conv1.weight"
    torch.testing.assert_close(network_state(store)[name], shipped[name].float(), rtol=0,
                               atol=1e-6)
    scratch = still.model_copy(update={"pretrained": False})
    assert training_key(scratch) != training_key(still)
    assert train_store(store, videos, scratch) == "trained"
    assert (network_state(store)[name] - shipped[name].float()).abs().max() > 1e-2

    path, warning = initial_weights(TRAIN)  # width 4: the shipped network does not fit
    assert path is None and "width 4" in warning


def test_clip_training_groups_one_tracked_hands_consecutive_frames(weighted_store):
    """clip_length 3 on the real clip: every clip holds one slot's consecutive frames, the
    sampled clips stay whole, and the clip losses are trained and recorded."""
    import numpy as np

    from handlabel.storage.hand_crops import hand_index
    from handlabel.tasks.train import training_hands

    store = weighted_store
    videos = list(store.manifest.table()["video_id"])
    clips = TRAIN.model_copy(update={"clip_length": 3, "epochs": 1, "max_samples": 9})
    data = training_hands(store, videos, clips)
    usable = hand_index(store, videos, clips.min_joint_weight)
    assert len(data) <= 9 < len(usable) and data.clips.shape[1] == 3
    frame_step = np.diff(np.unique(store.video(videos[0]).timestamps())).min()
    for window, real in zip(data.clips, data.clip_valid, strict=True):
        steps = np.diff(data.times[window[real]].numpy())
        assert np.allclose(steps, frame_step, rtol=0.01), "one frame apart, never a gap"
    assert train_store(store, videos, clips, overwrite=True) == "trained"
    metrics = store.model().read_metrics()
    assert metrics["loss_motion"].iloc[-1] > 0
    assert {"loss_shape_consistency", "loss_texture_consistency"} <= set(metrics)


def test_the_train_task_trains_on_every_usable_cpu_and_gives_them_back():
    """A Dask worker runs one torch thread; the train task lifts it to every CPU the process
    may use while it trains, and restores it after (also when training fails)."""
    import torch

    from handlabel.tasks.train import every_cpu_thread, usable_cpus

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(RuntimeError), every_cpu_thread():
            assert torch.get_num_threads() == max(usable_cpus(), 1)
            raise RuntimeError("training failed")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
