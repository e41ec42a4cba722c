"""GPU tasks find GPU workers: inside a flow, the GPU annotation asks the flow's own Dask
cluster (a real LocalCluster with separate worker processes), and says so when it cannot.
Workers started apart from the run get its Prefect API."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import dask
import pytest
from prefect import flow
from prefect_dask import DaskTaskRunner

from handlabel.config import DaskConfig
from handlabel.flows.runner import gpu_annotation


def _annotations_on(resources: dict) -> dict:
    @flow(task_runner=DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
        "n_workers": 1, "processes": True, "threads_per_worker": 1, "resources": resources}))
    def probe() -> dict:
        with gpu_annotation(DaskConfig()):
            return dict(dask.get_annotations())

    return probe()


def test_tasks_are_annotated_for_the_gpu_workers_of_the_flows_cluster(prefect_api):
    assert _annotations_on({"GPU": 1}) == {"resources": {"GPU": 1}}


def test_a_cluster_without_gpus_gets_no_annotation(prefect_api):
    assert _annotations_on({}) == {}


def test_a_cluster_that_cannot_be_asked_is_said_so(caplog):
    with caplog.at_level(logging.WARNING), gpu_annotation(DaskConfig()):
        assert dict(dask.get_annotations()) == {}
    assert "cannot ask the Dask cluster" in caplog.text


@pytest.fixture
def foreign_workers():
    """A Dask scheduler and a worker started apart from this process, without
    PREFECT_API_URL in their environment (as a user starts them); stopped by their pids."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                                   str(port), "--no-dashboard"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)]
    processes.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def test_workers_the_run_does_not_own_report_to_its_prefect_api(prefect_api, foreign_workers,
                                                                 tmp_path):
    """Without the run's API handed over, each such worker starts a temporary API of its own
    and no task run reaches the user's server."""
    import asyncio

    from distributed import Client
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from handlabel.flows.ingest import run_ingest

    from .conftest import GESTURE_AVI

    state = run_ingest([str(GESTURE_AVI)], str(tmp_path / "store"),
                       dask_address=foreign_workers)
    assert state.is_completed(), state.message
    with Client(foreign_workers) as client:
        seen = set(client.run(lambda: os.environ.get("PREFECT_API_URL")).values())
    assert seen == {prefect_api}

    async def task_runs():
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        return {run.name.split(" ")[0] for run in runs}

    assert {"ingest"} <= asyncio.run(task_runs()), "the worker's task runs reached the API"


def test_a_scheduler_that_takes_the_connection_and_never_answers_fails_the_run(monkeypatch):
    """A socket that accepts connections and never speaks (what a scheduler whose event loop
    has stopped looks like): registering the run's environment there fails with one line
    naming the address, after ``SCHEDULER_ANSWER_S`` (distributed's own handshake would
    wait for good)."""
    import time

    from handlabel.flows import runner

    monkeypatch.setattr(runner, "SCHEDULER_ANSWER_S", 3)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the connection; nobody reads or writes
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(runner.SchedulerNotAnswering, match=f"{address} took the connection"):
            runner.share_environment(address)
    assert time.monotonic() - started < 20
