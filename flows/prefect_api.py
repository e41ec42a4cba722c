"""One Prefect API for the whole run, Dask workers included.

Without ``PREFECT_API_URL`` Prefect starts a temporary server per *process*; every Dask
worker would then start its own (seconds each, and a CPU hog while it runs) and the flow's
task runs would be scattered over several databases. Here the CLI starts one temporary
server and exports its URL, so workers spawned afterwards report to it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


STARTUP_TIMEOUT_S = 180  # a loaded 2-core machine was measured to need more than 20 s

# Flow-run heartbeats let a long-lived server mark crashed runs; nothing watches them on a
# server that dies with the run, and each flow run's end waits up to 1 s for the heartbeat
# thread's sleep (8 flow runs per pipeline: medians 24.0 s with, 20.2 s without, for the
# tests' 20-frame pipeline; docs/performance.md, "The test suite").
WITHOUT_HEARTBEATS = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}


class PrefectAPIError(RuntimeError):
    """The temporary Prefect API could not be started."""


@contextlib.contextmanager
def shared_prefect_api() -> Iterator[str | None]:
    """Yield the API URL in use: the configured server, or a temporary one shared with workers
    that dies with this process, however it ends."""
    configured = PREFECT_API_URL.value()
    if configured:
        os.environ.setdefault("PREFECT_API_URL", configured)
        yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = _start(SubprocessASGIServer())
    watchdog = subprocess.Popen([sys.executable, "-m", "handlabel.flows.api_watchdog",
                                 str(os.getpid()), str(server.server_process.pid)],
                                start_new_session=True)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url,
                                         **WITHOUT_HEARTBEATS}):
            try:
                yield server.api_url
            finally:
                drain_prefect_workers()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()
        watchdog.wait(timeout=10)  # it ends once the server is gone


def _start(server):
    timeout = int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                                 STARTUP_TIMEOUT_S))
    try:
        server.start(timeout=timeout)
    except (RuntimeError, OSError) as exc:
        server.stop()
        reason = str(exc).split(" stdout:")[0]
        raise PrefectAPIError(
            f"the temporary Prefect API did not start within {timeout} s ({reason}); raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a busy machine, or point "
            "PREFECT_API_URL at a running server (prefect server start)") from exc
    return server


def drain_prefect_workers() -> None:
    """Send queued logs and events now; once the server is gone they would retry for minutes."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    with contextlib.suppress(RuntimeError):  # a worker that never started
        APILogWorker.drain_all()
    EventsWorker.drain_all()
