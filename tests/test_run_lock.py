"""The store's run lock, in separate real processes: one writing run at a time, a killed run
releases it at once, and a stage left "running" by a run that is gone reads as interrupted
(not done) while one of a live run reads as running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from handlabel.flows.cli import app
from handlabel.storage.manifest import Manifest
from handlabel.storage.run_lock import (
    StoreBusyError,
    StoreNotWritableError,
    run_owner,
    store_run,
)
from handlabel.storage.store import DatasetStore

HOLD = """
import sys, time
from handlabel.storage.run_lock import store_run
with store_run(sys.argv[1], "holder"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the store's lock; yields its Popen (killed at the end)."""
    store = tmp_path / "store"
    DatasetStore(str(store))
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        yield store, process
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_second_run_is_refused_with_the_owner_named(holder):
    store, process = holder
    owner = run_owner(str(store))
    assert owner is not None and owner["pid"] == process.pid and owner["label"] == "holder"
    with pytest.raises(StoreBusyError, match=f"pid {process.pid}"), \
            store_run(str(store), "second"):
        pass
    result = CliRunner().invoke(app, ["detect", str(store)])
    assert result.exit_code == 2 and f"in use by holder (pid {process.pid}" in result.output


def test_sigkill_releases_the_lock_and_running_reads_as_interrupted(holder):
    store, process = holder
    manifest = Manifest(str(store))
    manifest.upsert("v1", name="clip.mp4", ingest_state="done", detect_state="running")
    assert manifest.table().loc[0, "detect_state"] == "running"  # its run is alive
    status = CliRunner().invoke(app, ["status", str(store)])
    assert status.exit_code == 0 and "run" in status.output

    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert run_owner(str(store)) is None
    assert manifest.table().loc[0, "detect_state"] == "interrupted"
    assert manifest.get("v1")["detect_state"] == "running", "derived on reading, not written"
    status = CliRunner().invoke(app, ["status", str(store)])
    assert status.exit_code == 1 and "INT" in status.output
    assert "interrupted clip.mp4 [detect]" in status.output
    with store_run(str(store), "after the kill"):  # free again at once: no stale lock
        assert manifest.table().loc[0, "detect_state"] == "running"


def test_the_lock_is_re_entrant_in_one_process_and_released_after(tmp_path):
    store = str(tmp_path / "store")
    with store_run(store, "outer"), store_run(store, "inner"):
        assert run_owner(store) is not None
    assert run_owner(store) is None
    with store_run(store, "again"):
        pass


def test_a_store_path_that_is_a_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "store"
    path.write_text("not a folder")
    with pytest.raises(StoreNotWritableError, match="exists and is not a folder"), \
            store_run(str(path), "x"):
        pass
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0")
    result = CliRunner().invoke(app, ["run", str(video), "--store", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"{path}: exists and is not a folder"


def test_the_lock_outlives_nothing_a_dead_run_leaves(tmp_path):
    """A run that ends normally leaves no owner behind, even when the lock file stays."""
    store = tmp_path / "store"
    subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(120)", "pass"), str(store)],
                   check=True, capture_output=True, timeout=60)
    assert (store / ".run.lock").exists() and run_owner(str(store)) is None
    with store_run(str(store), "next"):
        assert run_owner(str(store)) is not None
