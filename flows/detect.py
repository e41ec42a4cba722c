"""The detect flow: every ingested video, chunk by chunk on the Dask workers."""

from __future__ import annotations

from prefect import flow

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.detect import detect_chunk_task, finish_detect_task, prepare_detect_task

from .artifacts import PUBLISHING
from .chunked import run_chunked_stage
from .runner import dask_task_runner


def videos_done_with(store: DatasetStore, stage: str, among: list[str] | None = None
                     ) -> list[str]:
    """The current (not superseded) videos whose ``stage`` is done (of ``among`` only, when
    given)."""
    table = store.manifest.table()
    current = table["superseded_by"].isna()
    done = table.loc[current & (table[f"{stage}_state"] == "done"), "video_id"].tolist()
    return done if among is None else [v for v in done if v in set(among)]


def not_recorded_done(store: DatasetStore, stage: str, videos: list[str]) -> dict[str, str]:
    """Of ``videos`` whose task reported success, those the manifest does not show done: a
    task rescheduled from a worker that died can be reported done without having run."""
    done = set(videos_done_with(store, stage, videos))
    return {v: f"{stage} reported done but not recorded (its worker lost?); rerun it"
            for v in videos if v not in done}


@flow(name="detect", task_runner=dask_task_runner(), **PUBLISHING)
def detect_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False,
                videos: list[str] | None = None):
    """Detect hands in every ingested video of ``store`` (or of ``videos``); chunks already
    done are skipped."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    with store_run(dataset.url, "handlabel detect"):
        return run_chunked_stage("detect", dataset.url,
                                 videos_done_with(dataset, "ingest", videos), config.detect,
                                 overwrite, prepare_detect_task, detect_chunk_task,
                                 finish_detect_task)
