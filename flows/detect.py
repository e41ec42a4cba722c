"""The detect flow: every ingested video, chunk by chunk on the Dask workers."""

from __future__ import annotations

from prefect import flow

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore
from handlabel.tasks.detect import detect_chunk_task, finish_detect_task, prepare_detect_task

from .chunked import run_chunked_stage
from .runner import dask_task_runner


def videos_done_with(store: DatasetStore, stage: str) -> list[str]:
    table = store.manifest.table()
    return table.loc[table[f"{stage}_state"] == "done", "video_id"].tolist()


@flow(name="detect", task_runner=dask_task_runner())
def detect_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False):
    """Detect hands in every ingested video of ``store``; chunks already done are skipped."""
    config = config or HandlabelConfig()
    dataset = DatasetStore(store, create=False)
    return run_chunked_stage("detect", dataset.url, videos_done_with(dataset, "ingest"),
                             config.detect, overwrite, prepare_detect_task, detect_chunk_task,
                             finish_detect_task)
