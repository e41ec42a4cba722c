"""The export flow: per-video exports on the workers, then the dataset files and report."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.export import export_dataset_task, export_video_task

from .artifacts import PUBLISHING
from .detect import not_recorded_done, videos_done_with
from .runner import dask_task_runner


@flow(name="export", task_runner=dask_task_runner(), **PUBLISHING)
def export_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False,
                videos: list[str] | None = None):
    """Export every reconstructed video (or those of ``videos``), then write the dataset-wide
    files (always rewritten: they cover every video reconstructed and exported now)."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    with store_run(dataset.url, "handlabel export"):
        targets = videos_done_with(dataset, "reconstruct", videos)
        futures = {v: export_video_task.submit(dataset.url, v, config.export, overwrite)
                   for v in targets}
        outcomes = {v: f.result(raise_on_failure=False) for v, f in futures.items()}
        failed = {v: o for v, o in outcomes.items() if isinstance(o, BaseException)}
        failed |= not_recorded_done(dataset, "export", [v for v in targets if v not in failed])
        exported = set(videos_done_with(dataset, "export"))
        done = [v for v in videos_done_with(dataset, "reconstruct") if v in exported]
        written = export_dataset_task.submit(dataset.url, done, config.export).result(
            raise_on_failure=False) if done else {}
    if isinstance(written, BaseException):
        return Failed(message=f"export of the dataset files failed: {written}")
    get_run_logger().info("export: %s", written)
    if failed:
        return Failed(message="export failed: " + "; ".join(f"{v}: {e}"
                                                            for v, e in failed.items()))
    return Completed(message=f"{len(done)} videos exported")
