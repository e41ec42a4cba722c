"""The detect flow: every ingested video, chunk by chunk on the Dask workers."""

from __future__ import annotations

from prefect import flow

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.detect import detect_chunk_task, finish_detect_task, prepare_detect_task
from handlabel.tasks.detect_identity import repair_identity_task

from .artifacts import PUBLISHING
from .chunked import ChunkedTasks, RunSizes, run_chunked_stage
from .runner import dask_task_runner

TASKS = ChunkedTasks(prepare_detect_task, detect_chunk_task, finish_detect_task,
                     repair_identity_task)


@flow(name="detect", task_runner=dask_task_runner(), **PUBLISHING)
def detect_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False,
                videos: list[str] | None = None):
    """Detect hands in every ingested video of ``store`` (or of ``videos``); chunks already
    done are skipped."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    with store_run(dataset.url, "handlabel detect"):
        return run_chunked_stage("detect", dataset.url, dataset.videos_done("ingest", videos),
                                 config.detect, overwrite, TASKS,
                                 sizes=RunSizes.of(config.dask))
