"""The reconstruct flow: the trained model over every weighted video, chunk by chunk, then the
sequence fit of each video's tracked hands, on GPU workers where the cluster has them."""

from __future__ import annotations

from prefect import flow
from prefect.states import Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.reconstruct import (
    finish_reconstruct_task,
    fit_reconstruct_task,
    prepare_reconstruct_task,
    reconstruct_chunk_task,
)

from .artifacts import PUBLISHING
from .chunked import ChunkedTasks, RunSizes, run_chunked_stage
from .runner import dask_task_runner, gpu_annotation

TASKS = ChunkedTasks(prepare_reconstruct_task, reconstruct_chunk_task, finish_reconstruct_task,
                     after=fit_reconstruct_task)


@flow(name="reconstruct", task_runner=dask_task_runner(), **PUBLISHING)
def reconstruct_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False,
                     videos: list[str] | None = None):
    """3D hands for every weighted video (or of ``videos``); chunks done with the same model
    and config are skipped."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    if not dataset.has_model() or not dataset.model().attrs.get("complete"):
        return Failed(message="reconstruct: no trained model in the store; run train first")
    with store_run(dataset.url, "handlabel reconstruct"):
        return run_chunked_stage("reconstruct", dataset.url,
                                 dataset.videos_done("weight", videos), config.reconstruct,
                                 overwrite, TASKS, lambda: gpu_annotation(config.dask),
                                 RunSizes.of(config.dask))
