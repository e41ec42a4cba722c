"""The ingest flow: resolve sources, identify each by content, ingest the distinct videos."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed
from prefect.states import Completed, Failed
from prefect.utilities.annotations import unmapped
from prefect_dask import DaskTaskRunner

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.sources import resolve_sources
from handlabel.storage.store import DatasetStore
from handlabel.tasks.identify import VideoIdentity, identify_video, supersede_replaced_task
from handlabel.tasks.ingest import IngestResult, ingest_video
from handlabel.tasks.rig_register import RigError, register_rig_task, with_rig_intrinsics

from .artifacts import PUBLISHING
from .prefect_api import shared_prefect_api
from .runner import dask_scheduler, dask_task_runner


def group_by_content(identities: list[VideoIdentity]) -> dict[VideoIdentity, list[str]]:
    """Each distinct content's first input, with the URLs of all its byte-identical copies."""
    first: dict[str, VideoIdentity] = {}
    urls: dict[str, list[str]] = {}
    for identity in identities:
        first.setdefault(identity.video_id, identity)
        urls.setdefault(identity.video_id, []).append(identity.url)
    return {first[vid]: urls[vid] for vid in first}


def _result_of(future, identity: VideoIdentity) -> IngestResult:
    """The task's IngestResult, also for a task that ended Failed or crashed."""
    data = future.result(raise_on_failure=False)
    if isinstance(data, IngestResult):
        return data
    return IngestResult(identity.video_id, identity.name, "failed", error=f"{data!r}")


@flow(name="ingest", task_runner=dask_task_runner(), **PUBLISHING)
def ingest_flow(
    sources: list[str],
    store: str,
    config: HandlabelConfig | None = None,
    overwrite: bool = False,
):
    """Ingest every video named by ``sources`` (folders, globs, files, URLs) into ``store``."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    with store_run(store, "handlabel ingest"):
        return _ingest(sources, DatasetStore(store).url, config, overwrite)


def _ingest(sources: list[str], store_url: str, config: HandlabelConfig, overwrite: bool):
    logger = get_run_logger()
    try:
        ingest = with_rig_intrinsics(config.ingest, config.rig)
    except (RigError, ValueError) as exc:
        return Failed(message=str(exc))
    urls = resolve_sources(sources, config.ingest.extensions)
    if not urls:
        logger.warning("No video files found in %s (extensions %s)", sources,
                       config.ingest.extensions)
        return Completed(message="no videos found", data=[])
    identities = [f.result() for f in identify_video.map(urls, store_url=unmapped(store_url))]
    if superseded := supersede_replaced_task(store_url, identities):
        logger.info("%d stored videos superseded: their sources hold other content now: %s",
                    len(superseded), ", ".join(superseded))
    videos = group_by_content(identities)
    for identity, copies in videos.items():
        if len(copies) > 1:
            logger.info("%s: %d inputs have the same content; stored once", identity.video_id,
                        len(copies))
    hashed = sum(identity.hashed for identity in identities)
    logger.info("Ingesting %d distinct videos (%d inputs, %d hashed, %d unchanged) into %s",
                len(videos), len(urls), hashed, len(urls) - hashed, store_url)
    futures = {
        ingest_video.submit(store_url, identity, copies, ingest, overwrite): identity
        for identity, copies in videos.items()
    }
    results = []
    for done, future in enumerate(as_completed(list(futures)), start=1):
        result = _result_of(future, futures[future])
        results.append(result)
        logger.info("[%d/%d] %s: %s", done, len(futures), result.name, result.outcome)
    _publish_summary(results)
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        names = ", ".join(r.name for r in failed)
        return Failed(message=f"{len(failed)} of {len(results)} videos failed: {names}",
                      data=results)
    if problems := _register_rigs(store_url, config):
        return Failed(message="; ".join(problems), data=results)
    return Completed(message=f"{len(results)} videos ingested or up to date", data=results)


def _register_rigs(store_url: str, config: HandlabelConfig) -> list[str]:
    """Each configured rig checked against its ingested videos and recorded; the problems."""
    problems = []
    for rig in config.rig.rigs:
        state = register_rig_task(store_url, rig, config.rig, return_state=True)
        if state.is_failed():
            error = state.result(raise_exception=False)
            problems.append(str(error) if isinstance(error, RigError) else state.message)
        else:
            get_run_logger().info("rig %s: %d synchronised frames", rig.name,
                                  state.result()["n_frames"])
    return problems


def _publish_summary(results: list[IngestResult]) -> None:
    rows = [
        {"video": r.name, "id": r.video_id, "outcome": r.outcome, "frames": r.n_frames,
         "written": r.frames_written, "seconds": round(r.seconds, 2), "error": r.error or ""}
        for r in results
    ]
    create_table_artifact(key="ingest-summary", table=rows, description="Ingest outcome per video")


def run_ingest(
    sources: list[str],
    store: str,
    config: HandlabelConfig | None = None,
    overwrite: bool = False,
    dask_address: str | None = None,
):
    """Run the ingest flow on the configured Dask cluster; returns the flow run's final state."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    with shared_prefect_api(), dask_scheduler(config.dask, dask_address) as scheduler:
        return ingest_flow.with_options(task_runner=DaskTaskRunner(address=scheduler))(
            sources, store, config, overwrite, return_state=True
        )
