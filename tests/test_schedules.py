"""A scheduled deployment of prefect.yaml produces runs on a real local Prefect server (its
scheduler service: it failed with SQLAlchemy 2.1, see the pin in pyproject.toml), enabled
with the command prefect.yaml's comment names."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, copy_database

PREFECT = [str(Path(sys.executable).parent / "prefect")]
DEPLOYMENT = "pseudolabel/pseudolabel-archive"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prefect_server(tmp_path, prefect_database):
    """`prefect server start` on loopback with its own PREFECT_HOME (its database a copy of
    the session's migrated one); stopped by its pid."""
    copy_database(prefect_database, tmp_path / "prefect-home" / "prefect.db")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_UI_ENABLED="false",
               PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="1")
    server = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)
        yield url, {**env, "PREFECT_API_URL": url}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _prefect(env: dict, *args: str) -> str:
    result = subprocess.run([*PREFECT, "--no-prompt", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


async def _scheduled_runs(url: str) -> int:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async with PrefectClient(api=url) as client:
        runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["pseudolabel-archive"])))
    return sum(run.state_type.value == "SCHEDULED" for run in runs)


def test_a_resumed_schedule_creates_runs(prefect_server):
    url, env = prefect_server
    _prefect(env, "work-pool", "create", "handlabel-process", "--type", "process")
    _prefect(env, "deploy", "--name", "pseudolabel-archive")
    assert asyncio.run(_scheduled_runs(url)) == 0, "the schedule ships paused"
    listing = _prefect(env, "deployment", "schedule", "ls", DEPLOYMENT)
    schedule_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                            listing).group(0)
    _prefect(env, "deployment", "schedule", "resume", DEPLOYMENT, schedule_id)
    deadline = time.monotonic() + 60
    while (count := asyncio.run(_scheduled_runs(url))) == 0:
        assert time.monotonic() < deadline, "the scheduler created no run"
        time.sleep(1)
    assert count >= 1
