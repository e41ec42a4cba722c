"""The weight flow: supervision weights for every video whose detection is done."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.weight import weight_video_task

from .artifacts import PUBLISHING
from .detect import not_recorded_done, videos_done_with
from .runner import dask_task_runner


@flow(name="weight", task_runner=dask_task_runner(), **PUBLISHING)
def weight_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False,
                videos: list[str] | None = None):
    """Weight every detected video of ``store`` (or of ``videos``); videos up to date are
    skipped."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    with store_run(dataset.url, "handlabel weight"):
        videos = videos_done_with(dataset, "detect", videos)
        futures = {v: weight_video_task.submit(dataset.url, v, config.weight, overwrite)
                   for v in videos}
        outcomes = {v: f.result(raise_on_failure=False) for v, f in futures.items()}
        failed = {v: o for v, o in outcomes.items() if isinstance(o, BaseException)}
        failed |= not_recorded_done(dataset, "weight", [v for v in videos if v not in failed])
    get_run_logger().info("weights: %s", {v: o if v not in failed else "failed"
                                          for v, o in outcomes.items()})
    if failed:
        return Failed(message="weight failed: " + "; ".join(f"{v}: {e}" for v, e in failed.items()))
    return Completed(message=f"{len(videos)} videos weighted or up to date")
