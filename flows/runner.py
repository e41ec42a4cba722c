"""Where tasks run: Prefect's DaskTaskRunner on a LocalCluster, or on an existing scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from distributed import WorkerPlugin
from prefect_dask import DaskTaskRunner

from handlabel.config import DaskConfig
from handlabel.tasks.devices import local_gpu_count

DASK_ADDRESS_ENV = "HANDLABEL_DASK_ADDRESS"


def configured_address(config: DaskConfig | None, address: str | None = None) -> str | None:
    """The scheduler to use: the argument, then the config, then ``HANDLABEL_DASK_ADDRESS``."""
    return address or (config.address if config else None) or os.environ.get(DASK_ADDRESS_ENV)


def dask_task_runner(config: DaskConfig | None = None, address: str | None = None
                     ) -> DaskTaskRunner:
    """A DaskTaskRunner on the configured scheduler, else on a new LocalCluster."""
    config = config or DaskConfig()
    address = configured_address(config, address)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs=local_cluster_kwargs(config))


def local_cluster_kwargs(config: DaskConfig) -> dict:
    """LocalCluster settings; its workers advertise this machine's GPUs (if any) under
    ``config.gpu_resource``, so GPU-annotated tasks find them."""
    kwargs = {"n_workers": config.n_workers, "threads_per_worker": config.threads_per_worker,
              "processes": True}
    gpus = local_gpu_count()
    if config.gpu_resource and gpus:
        kwargs["resources"] = {config.gpu_resource: gpus}
    return kwargs


def gpu_annotation(config: DaskConfig) -> contextlib.AbstractContextManager:
    """Annotate tasks submitted inside it as needing one GPU, but only when some worker of the
    flow's cluster offers the resource: on a cluster without GPUs, tasks must not wait for
    one forever, and run on the CPU instead. A cluster that cannot be asked is said so in the
    log (GPU tasks then run wherever Dask puts them)."""
    name = config.gpu_resource
    if not name or not _on_dask():
        return contextlib.nullcontext()
    try:
        workers = _flow_client().scheduler_info(n_workers=-1)["workers"].values()
    except (ValueError, OSError, TypeError, AttributeError) as exc:
        _warn(f"cannot ask the Dask cluster for {name!r} workers ({exc}); GPU tasks are not "
              "annotated and may run on CPU workers")
        return contextlib.nullcontext()
    if not any(w.get("resources", {}).get(name) for w in workers):
        return contextlib.nullcontext()
    import dask

    return dask.annotate(resources={name: 1})


def _on_dask() -> bool:
    """Whether the running flow's tasks go to Dask (a small job's run in this process, or a
    flow called with a thread pool, has no cluster to ask)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context is None or isinstance(context.task_runner, DaskTaskRunner)


def _flow_client():
    """The running flow's Dask client: its task runner's (inside a Prefect flow there is no
    global client, so ``distributed.get_client`` alone always fails there), else the global."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if isinstance(runner, DaskTaskRunner):
        return runner.client
    from distributed import get_client

    return get_client()


def _warn(message: str) -> None:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().warning(message)
    except MissingContextError:
        logging.getLogger(__name__).warning(message)


@contextlib.contextmanager
def dask_scheduler(config: DaskConfig | None, address: str | None = None) -> Iterator[str]:
    """A scheduler address for several flows in a row: the configured one, or a LocalCluster
    started once for all of them (rather than one per stage flow)."""
    config = config or DaskConfig()
    address = configured_address(config, address)
    if address:
        share_environment(address)
        yield address
        return
    from distributed import LocalCluster

    with LocalCluster(**local_cluster_kwargs(config)) as cluster:
        try:
            yield cluster.scheduler_address
        finally:
            _drain_workers(cluster)


def _drain_workers(cluster) -> None:
    """Have each worker send its queued Prefect logs and events now: a worker still draining
    them when the cluster closes is killed after 4 s (and says so on the console)."""
    from distributed import Client

    with contextlib.suppress(Exception), Client(cluster, timeout=10) as client:
        client.run(_drain_off_the_event_loop)


def _drain_off_the_event_loop() -> None:
    """Prefect's drain returns a coroutine inside a running loop (a worker's): drain in a
    thread of its own instead."""
    from .prefect_api import drain_prefect_workers

    thread = threading.Thread(target=drain_prefect_workers, daemon=True)
    thread.start()
    thread.join(timeout=10)


SHARED_VARIABLES = ("PREFECT_API_URL",)  # and every FSSPEC_* variable


class ShareEnvironment(WorkerPlugin):
    """A Dask worker plugin: workers this process did not start get its Prefect API (else
    each starts a temporary API of its own and its task runs reach nobody) and its fsspec
    options (the store's endpoint and credentials). Applies to workers that join later too."""

    name = "handlabel-environment"

    def __init__(self, variables: dict[str, str]):
        self.variables = variables

    def setup(self, worker=None) -> None:
        import sys

        import fsspec.config

        os.environ.update(self.variables)
        fsspec.config.set_conf_env(fsspec.config.conf)
        if "prefect.context" in sys.modules:  # settings were read at import: read them again
            from prefect.context import refresh_global_settings_context

            refresh_global_settings_context()


SCHEDULER_ANSWER_S = 90  # distributed's own connect timeout (30 s) plus its handshake


class SchedulerNotAnswering(RuntimeError):
    """A Dask scheduler that took the connection and never answered."""


def share_environment(address: str) -> None:
    """Register :class:`ShareEnvironment` with this process's variables on the scheduler.

    Bounded: distributed's handshake has no timeout of its own, and a scheduler that accepts
    the connection but never answers (a test's in-process scheduler whose event loop had
    stopped, seen once in CI) held the run for good. The client is made in a daemon thread
    and the run fails with one line after ``SCHEDULER_ANSWER_S``."""
    variables = {k: v for k, v in os.environ.items()
                 if k in SHARED_VARIABLES or k.startswith("FSSPEC_")}
    outcome: list[BaseException | None] = []
    thread = threading.Thread(target=_register_environment, args=(address, variables, outcome),
                              name="handlabel-dask-connect", daemon=True)
    thread.start()
    thread.join(SCHEDULER_ANSWER_S)
    if not outcome:
        raise SchedulerNotAnswering(f"the Dask scheduler at {address} took the connection but "
                                    f"did not answer within {SCHEDULER_ANSWER_S} s")
    if outcome[0] is not None:
        raise outcome[0]


def _register_environment(address: str, variables: dict[str, str],
                          outcome: list[BaseException | None]) -> None:
    from distributed import Client

    try:
        with Client(address, timeout=30) as client:
            client.register_plugin(ShareEnvironment(variables), name=ShareEnvironment.name)
        outcome.append(None)
    except BaseException as exc:  # handed to the caller's thread, raised there
        outcome.append(exc)


def quiet_dask_logs() -> None:
    """Keep Dask's own INFO chatter (nannies, comms) out of the run's console output."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # for spawned workers
    logging.getLogger("distributed").setLevel(logging.WARNING)
