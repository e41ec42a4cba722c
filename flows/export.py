"""The export flow: per-video exports on the workers, then the dataset files and report."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore
from handlabel.tasks.export import export_dataset_task, export_video_task

from .detect import videos_done_with
from .runner import dask_task_runner


@flow(name="export", task_runner=dask_task_runner())
def export_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False):
    """Export every reconstructed video, then write the dataset-wide files (always rewritten:
    they cover whichever videos are reconstructed now)."""
    config = config or HandlabelConfig()
    dataset = DatasetStore(store, create=False)
    videos = videos_done_with(dataset, "reconstruct")
    futures = {v: export_video_task.submit(dataset.url, v, config.export, overwrite)
               for v in videos}
    outcomes = {v: f.result(raise_on_failure=False) for v, f in futures.items()}
    failed = {v: o for v, o in outcomes.items() if isinstance(o, BaseException)}
    done = [v for v in videos if v not in failed]
    written = export_dataset_task.submit(dataset.url, done, config.export).result(
        raise_on_failure=False) if done else {}
    if isinstance(written, BaseException):
        return Failed(message=f"export of the dataset files failed: {written}")
    get_run_logger().info("export: %s", written)
    if failed:
        return Failed(message="export failed: " + "; ".join(f"{v}: {e}"
                                                            for v, e in failed.items()))
    return Completed(message=f"{len(done)} videos exported")
