"""Where tasks run: Prefect's DaskTaskRunner on a LocalCluster, or on an existing scheduler."""

from __future__ import annotations

import logging
import os

from prefect_dask import DaskTaskRunner

from handlabel.config import DaskConfig

DASK_ADDRESS_ENV = "HANDLABEL_DASK_ADDRESS"


def dask_task_runner(
    config: DaskConfig | None = None, address: str | None = None
) -> DaskTaskRunner:
    """A DaskTaskRunner for the given scheduler address, else a new LocalCluster.

    The address comes from the argument, then the config, then ``HANDLABEL_DASK_ADDRESS``
    (how deployments in prefect.yaml point at a shared scheduler).
    """
    config = config or DaskConfig()
    address = address or config.address or os.environ.get(DASK_ADDRESS_ENV)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": config.n_workers,
            "threads_per_worker": config.threads_per_worker,
            "processes": True,
        },
    )


def quiet_dask_logs() -> None:
    """Keep Dask's own INFO chatter (nannies, comms) out of the run's console output."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # for spawned workers
    logging.getLogger("distributed").setLevel(logging.WARNING)
