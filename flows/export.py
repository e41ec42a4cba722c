"""The export flow: every reconstructed video chunk by chunk on the workers (JPEGs and overlay
parts), each video's own step after its chunks, then the dataset files and report."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.export import export_dataset_task, exported_videos
from handlabel.tasks.export_video import (
    export_chunk_task,
    finish_export_task,
    finish_video_export_task,
    prepare_export_task,
)

from .artifacts import PUBLISHING
from .chunked import ChunkedTasks, RunSizes, run_chunked_stage
from .runner import dask_task_runner

TASKS = ChunkedTasks(prepare_export_task, export_chunk_task, finish_export_task,
                     after=finish_video_export_task)


@flow(name="export", task_runner=dask_task_runner(), **PUBLISHING)
def export_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False,
                videos: list[str] | None = None):
    """Export every reconstructed video (or those of ``videos``), then write the dataset-wide
    files over every video reconstructed and exported now."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    with store_run(dataset.url, "handlabel export"):
        targets = dataset.videos_done("reconstruct", videos)
        videos_state = run_chunked_stage("export", dataset.url, targets, config.export,
                                         overwrite, TASKS, sizes=RunSizes.of(config.dask))
        done = exported_videos(dataset)
        written = export_dataset_task.submit(dataset.url, done, config.export).result(
            raise_on_failure=False) if done else {}
    if isinstance(written, BaseException):
        return Failed(message=f"export of the dataset files failed: {written}")
    get_run_logger().info("export: %s", written)
    if videos_state.is_failed():
        return videos_state
    return Completed(message=f"{len(done)} videos exported")
