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
from .runner import dask_task_runner


def not_recorded_done(store: DatasetStore, stage: str, videos: list[str]) -> dict[str, str]:
    """Of ``videos`` whose task reported success, those the manifest does not show done: a
    task rescheduled from a worker that died can be reported done without having run."""
    done = set(store.videos_done(stage, videos))
    return {v: f"{stage} reported done but not recorded (its worker lost?); rerun it"
            for v in videos if v not in done}


@flow(name="weight", task_runner=dask_task_runner(), **PUBLISHING)
def weight_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False,
                videos: list[str] | None = None):
    """Weight every detected video of ``store`` (or of ``videos``); videos up to date are
    skipped."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    with store_run(dataset.url, "handlabel weight"):
        videos = dataset.videos_done("detect", videos)
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
