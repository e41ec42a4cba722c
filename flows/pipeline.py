"""The main flow: ingest -> detect -> weight -> train -> reconstruct -> rounds -> rig ->
export (rounds of fit and training run when train.rounds asks for them, the rig stage labels
calibrated rigs; stores without either pass them at once)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.sources import declared_frames
from handlabel.storage.store import DatasetStore, StoreError

from .artifacts import PUBLISHING
from .prefect_api import shared_prefect_api
from .runner import configured_address, dask_scheduler
from .stages import load_stage_flows, stage, stages_from

_STAGE_RUNNER: ContextVar[TaskRunner | None] = ContextVar("stage_runner", default=None)


@contextlib.contextmanager
def stages_on(runner: TaskRunner) -> Iterator[None]:
    """Run the main flow's stages on ``runner`` instead of a Dask cluster, in this process
    (debugging, and tests that patch a task to fail)."""
    token = _STAGE_RUNNER.set(runner)
    try:
        yield
    finally:
        _STAGE_RUNNER.reset(token)


@flow(name="pseudolabel", **PUBLISHING)
def pseudolabel_flow(sources: list[str], store: str, config: HandlabelConfig | None = None,
                     overwrite: bool = False, dask_address: str | None = None,
                     first_stage: str = "ingest", overwrite_stage: str | None = None,
                     videos: list[str] | None = None, skip: tuple[str, ...] = ()):
    """Run the stages in order on one Dask cluster, from ``first_stage`` on; a stage's failed
    videos do not stop the others, and the run ends Failed when any stage failed for any
    video. ``overwrite`` redoes every stage; ``overwrite_stage`` redoes one (the stages after
    it redo what depends on it by themselves). ``videos`` limits the per-video stages to
    those video ids, until a retrain makes every video's labels stale. ``skip`` names
    stages not to run (``handlabel label`` skips train: the store's model labels the new
    videos as it is)."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    logger = get_run_logger()
    stages = [s for s in stages_from(first_stage) if s.name not in skip]
    states = {}
    with store_run(store, "handlabel pipeline"), \
            _runner(config, dask_address, sources) as runner:
        model_before = _model_identity(store)
        for number, current in enumerate(stages, start=1):
            name = current.name
            logger.info("stage %d/%d: %s", number, len(stages), name)
            redo = overwrite or name == overwrite_stage
            first = [sources] if current.units == "sources" else []
            only = {"videos": videos} if current.per_video else {}
            states[name] = current.load_flow().with_options(task_runner=runner)(
                *first, store, config, redo, return_state=True, **only)
            logger.info("stage %s: %s", name, states[name].message)
            if name == "train" and videos is not None and _model_identity(store) != model_before:
                logger.info("the model changed: every video's reconstruct and export follow")
                videos = None
    failed = {name: s.message for name, s in states.items() if s.is_failed()}
    if failed:
        return Failed(message="; ".join(f"{n}: {m}" for n, m in failed.items()))
    return Completed(message=f"stages {', '.join(s.name for s in stages)} done")


def _model_identity(store: str) -> str | None:
    try:
        dataset = DatasetStore(store, create=False)
    except StoreError:
        return None
    return dataset.model().attrs.get("identity") if dataset.has_model() else None


@contextlib.contextmanager
def _runner(config: HandlabelConfig, address: str | None,
            sources: list[str]) -> Iterator[TaskRunner]:
    if (runner := _STAGE_RUNNER.get()) is not None:
        yield runner
        return
    small = config.dask.in_process_below_frames
    if small and configured_address(config.dask, address) is None:
        frames = declared_frames(sources, config.ingest.extensions)
        if frames is not None and frames < small:
            get_run_logger().info("a small job (%d frames, under dask.in_process_below_frames "
                                  "%d): its tasks run in this process", frames, small)
            yield ThreadPoolTaskRunner(max_workers=1)
            return
    with dask_scheduler(config.dask, address) as scheduler:
        yield DaskTaskRunner(address=scheduler)


def run_pipeline(sources: list[str], store: str, config: HandlabelConfig | None = None,
                 overwrite: bool = False, dask_address: str | None = None, **options):
    """Run the main flow with one Prefect API for the run; returns its final state."""
    with shared_prefect_api(while_starting=lambda: load_stage_flows(config or HandlabelConfig())):
        return pseudolabel_flow(sources, store, config, overwrite, dask_address,
                                return_state=True, **options)


def run_stage(name: str, store: str, config: HandlabelConfig | None = None,
              overwrite: bool = False, dask_address: str | None = None):
    """Run one stage after ingest on its own (detect, weight, ...); returns its final
    state."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    with shared_prefect_api(while_starting=stage(name).load_flow), \
            dask_scheduler(config.dask, dask_address) as scheduler:
        runner = DaskTaskRunner(address=scheduler)
        return stage(name).load_flow().with_options(task_runner=runner)(
            store, config, overwrite, return_state=True)
