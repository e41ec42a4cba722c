"""The train flow: one S2HAND training run over the hands of every weighted video."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.train import train_task

from .artifacts import PUBLISHING
from .runner import dask_task_runner, gpu_annotation


@flow(name="train", task_runner=dask_task_runner(), **PUBLISHING)
def train_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False):
    """Train on the crops of all weighted videos (resuming an interrupted run); skipped when
    the model is complete for the same data and train config."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    videos = dataset.videos_done("weight")
    if not videos:
        return Failed(message="train: no weighted videos in the store; run weight first")
    with store_run(dataset.url, "handlabel train"), gpu_annotation(config.dask):
        outcome = train_task.submit(dataset.url, videos, config.train, overwrite,
                                    config.rig.inlier_hand_sizes).result(raise_on_failure=False)
    if isinstance(outcome, BaseException):
        return Failed(message=f"train failed: {outcome}")
    get_run_logger().info("train: %s on %d videos", outcome, len(videos))
    return Completed(message=f"model {outcome} on {len(videos)} videos")
