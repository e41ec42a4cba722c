"""One Prefect API for the whole run, Dask workers included.

Without ``PREFECT_API_URL`` Prefect starts a temporary server per *process*; every Dask
worker would then start its own (seconds each, and a CPU hog while it runs) and the flow's
task runs would be scattered over several databases. Here the CLI starts one temporary
server and exports its URL, so workers spawned afterwards report to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import prefect
from prefect.context import refresh_global_settings_context
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    get_current_settings,
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
def shared_prefect_api(while_starting: Callable[[], object] | None = None) -> Iterator[str | None]:
    """Yield the API URL in use: the configured server, or a temporary one shared with workers
    that dies with this process, however it ends.

    ``while_starting`` runs while the temporary server boots (its own process, about 6 s on
    this machine): the run's imports, so that the two overlap instead of adding up.
    """
    configured = PREFECT_API_URL.value()
    if configured:
        os.environ.setdefault("PREFECT_API_URL", configured)
        if while_starting is not None:
            while_starting()
        yield configured
        return
    server = TemporaryAPI.launch()
    watchdog = subprocess.Popen([sys.executable, "-m", "handlabel.flows.api_watchdog",
                                 str(os.getpid()), str(server.process.pid)],
                                start_new_session=True)
    # In the environment (Dask workers started from here inherit it) and in Prefect's
    # process-wide settings: threads that carry no settings of their own (Prefect's log and
    # event workers, threads a task starts) read those, and without a URL would each start
    # a temporary server of their own.
    os.environ["PREFECT_API_URL"] = server.url
    refresh_global_settings_context()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.url, **WITHOUT_HEARTBEATS}):
            if while_starting is not None:
                while_starting()
            server.wait_until_healthy()
            try:
                yield server.url
            finally:
                drain_prefect_workers()
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        refresh_global_settings_context()
        server.stop()
        watchdog.terminate()  # its work is done (it would notice within its 1 s poll)
        watchdog.wait(timeout=10)


@dataclasses.dataclass
class TemporaryAPI:
    """Prefect's own temporary server (uvicorn serving ``prefect.server.api.server``, as
    ``prefect.server.api.server.SubprocessASGIServer`` starts it), launched without importing
    the server's code into this process: that import alone took 4.7 s of a 20-frame job."""

    process: subprocess.Popen
    port: int
    launched: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @classmethod
    def launch(cls) -> TemporaryAPI:
        port = _free_port()
        command = [sys.executable, "-m", "uvicorn", "--app-dir",
                   str(prefect.__module_path__.parent), "--factory",
                   "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
                   str(port), "--log-level", "error", "--lifespan", "on"]
        environment = {**os.environ, **get_current_settings().to_environment_variables(
            exclude_unset=True), "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1"}
        logging.getLogger("prefect").info("Starting temporary server on http://127.0.0.1:%d",
                                          port)  # the line Prefect's own start logs
        return cls(subprocess.Popen(command, env=environment), port)

    def wait_until_healthy(self) -> None:
        timeout = int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                                     STARTUP_TIMEOUT_S))
        deadline = self.launched + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise PrefectAPIError(
                        f"the temporary Prefect API exited with code {self.process.returncode} "
                        f"while starting on port {self.port}; point PREFECT_API_URL at a "
                        "running server (prefect server start)")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.url}/health", timeout=5).status_code == 200:
                        return
                time.sleep(0.1)
        self.stop()
        raise PrefectAPIError(
            f"the temporary Prefect API did not start within {timeout} s; raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a busy machine, or point "
            "PREFECT_API_URL at a running server (prefect server start)")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    """A port nothing listens on now (the OS picks it; another process could take it before
    the server binds, in which case the server exits and the run says so)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def drain_prefect_workers() -> None:
    """Send queued logs and events now; once the server is gone they would retry for minutes."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    with contextlib.suppress(RuntimeError):  # a worker that never started
        APILogWorker.drain_all()
    EventsWorker.drain_all()
