"""The detect flow: every ingested video, chunk by chunk on the Dask workers."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from prefect.states import Completed, Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore
from handlabel.tasks.detect import detect_chunk_task, finish_detect_task, prepare_detect_task

from .runner import dask_task_runner


def videos_done_with(store: DatasetStore, stage: str) -> list[str]:
    table = store.manifest.table()
    return table.loc[table[f"{stage}_state"] == "done", "video_id"].tolist()


def _error(result) -> str | None:
    return f"{result!r}" if isinstance(result, BaseException) else None


@flow(name="detect", task_runner=dask_task_runner())
def detect_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False):
    """Detect hands in every ingested video of ``store``; chunks already done are skipped."""
    logger = get_run_logger()
    config = config or HandlabelConfig()
    dataset = DatasetStore(store, create=False)
    videos = videos_done_with(dataset, "ingest")
    prepared = {v: prepare_detect_task.submit(dataset.url, v, config.detect, overwrite)
                for v in videos}
    chunks, errors, skipped = {}, {}, []
    for video, future in prepared.items():
        todo = future.result(raise_on_failure=False)
        if (error := _error(todo)) is not None:
            errors[video] = error
        elif todo is None:
            skipped.append(video)
        else:
            chunks[video] = {detect_chunk_task.submit(dataset.url, video, c, config.detect): c
                             for c in todo}
    total = sum(len(c) for c in chunks.values())
    logger.info("Detecting %d chunks of %d videos (%d up to date)", total, len(chunks),
                len(skipped))
    done = 0
    for video, futures in chunks.items():
        for future in as_completed(list(futures)):
            done += 1
            if (error := _error(future.result(raise_on_failure=False))) is not None:
                errors.setdefault(video, f"chunk {futures[future]}: {error}")
            logger.info("[%d/%d] chunks detected", done, total)
        finish_detect_task.submit(dataset.url, video, errors.get(video)).wait()
    if errors:
        return Failed(message=f"detect failed for {len(errors)} of {len(videos)} videos: "
                      + "; ".join(f"{v}: {e}" for v, e in errors.items()))
    return Completed(message=f"{len(chunks)} videos detected, {len(skipped)} up to date")
