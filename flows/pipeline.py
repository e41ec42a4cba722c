"""The main flow: ingest -> detect -> weight (later: train -> reconstruct -> export)."""

from __future__ import annotations

from prefect import flow
from prefect.states import Completed, Failed
from prefect_dask import DaskTaskRunner

from handlabel.config import HandlabelConfig

from .detect import detect_flow
from .ingest import ingest_flow
from .prefect_api import shared_prefect_api
from .runner import dask_scheduler
from .weight import weight_flow


@flow(name="pseudolabel")
def pseudolabel_flow(sources: list[str], store: str, config: HandlabelConfig | None = None,
                     overwrite: bool = False, dask_address: str | None = None):
    """Run every stage in order on one Dask cluster; a stage's failed videos do not stop the
    others, and the run ends Failed when any stage failed for any video."""
    config = config or HandlabelConfig()
    states = {}
    with dask_scheduler(config.dask, dask_address) as address:
        runner = DaskTaskRunner(address=address)
        states["ingest"] = ingest_flow.with_options(task_runner=runner)(
            sources, store, config, overwrite, return_state=True)
        for name, stage in (("detect", detect_flow), ("weight", weight_flow)):
            states[name] = stage.with_options(task_runner=runner)(
                store, config, overwrite, return_state=True)
    failed = {name: s.message for name, s in states.items() if s.is_failed()}
    if failed:
        return Failed(message="; ".join(f"{n}: {m}" for n, m in failed.items()))
    return Completed(message="all stages done")


def run_pipeline(sources: list[str], store: str, config: HandlabelConfig | None = None,
                 overwrite: bool = False, dask_address: str | None = None):
    """Run the main flow with one Prefect API for the run; returns its final state."""
    with shared_prefect_api():
        return pseudolabel_flow(sources, store, config, overwrite, dask_address,
                                return_state=True)


def run_stage(stage_flow, store: str, config: HandlabelConfig | None = None,
              overwrite: bool = False, dask_address: str | None = None):
    """Run one stage flow on its own (detect, weight, ...); returns its final state."""
    from .runner import dask_task_runner

    config = config or HandlabelConfig()
    with shared_prefect_api():
        runner = dask_task_runner(config.dask, dask_address)
        return stage_flow.with_options(task_runner=runner)(store, config, overwrite,
                                                           return_state=True)
