"""The fault suite: the real CLI in its own processes, with its own temporary Prefect API and
Dask cluster, killed with SIGKILL mid-stage; a Dask worker killed mid-stage; two runs on one
store; a full disk and a read-only store (small tmpfs mounts, skipped where the test cannot
mount); inputs that must fail alone and at once. Every case ends with no data lost: a
rerun's arrays equal a clean run's, and nothing is marked done that is not."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import psutil
import pytest
from typer.testing import CliRunner

from handlabel.config import CompressionConfig, HandlabelConfig, IngestConfig
from handlabel.flows.cli import app
from handlabel.storage.run_lock import run_owner
from handlabel.storage.store import DatasetStore
from handlabel.storage.video import iter_frames

from .conftest import GESTURE_AVI, OFFICE_MP4
from .media import write_clip

HANDLABEL = [sys.executable, "-c", "from handlabel.flows.cli import app; app()"]
CHUNK = 16
DETECT_ARRAYS = ("present", "keypoints", "world", "score", "box", "crop_K", "crops")


@pytest.fixture(scope="module")
def office_clip(tmp_path_factory, sample) -> Path:
    """96 real frames of the office video at 640x360: 6 chunks of 16, long enough to kill."""
    frames = []
    with av.open(str(OFFICE_MP4)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24", width=640, height=360))
            if len(frames) == 96:
                break
    return write_clip(tmp_path_factory.mktemp("office") / "office96.mp4", frames)


@pytest.fixture
def config_file(tmp_path):
    def write(text: str) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(f"ingest: {{chunk_frames: {CHUNK}}}\ndask: {{n_workers: 1}}\n{text}")
        return path

    return write


def cli_env(**extra) -> dict:
    """The CLI's environment: no shared Prefect API, so it starts (and must stop) its own."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, **extra}


def start_cli(*args, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*HANDLABEL, *map(str, args)], env=cli_env(),
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for(condition, timeout_s: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def chunks_done_while_running(store: Path, stage: str) -> int:
    with contextlib.suppress(Exception):  # the store is being written: read what is there
        dataset = DatasetStore(str(store), create=False)
        row = dataset.manifest.table().iloc[0]
        if row[f"{stage}_state"] != "running":
            return 0
        group = dataset.video(row["video_id"]) if stage == "ingest" else \
            dataset.stage(row["video_id"], stage)
        return len(group.done_chunks()) if group is not None else 0
    return 0


def kill_and_reap(process: subprocess.Popen) -> list[str]:
    """SIGKILL the CLI; returns the command lines of its descendants still alive 15 s later
    (then killed, so that the test leaves nothing behind)."""
    descendants = psutil.Process(process.pid).children(recursive=True)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)

    def alive():
        return [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    with contextlib.suppress(AssertionError):
        wait_for(lambda: not alive(), 15)
    survivors = [" ".join(p.cmdline()[:4]) for p in alive()]
    for p in alive():
        p.kill()
    return survivors


def only_video_id(store: Path) -> str:
    return DatasetStore(str(store), create=False).manifest.table().iloc[0]["video_id"]


def detect_arrays(store: Path) -> dict[str, np.ndarray]:
    dataset = DatasetStore(str(store), create=False)
    video_id = dataset.manifest.table().iloc[0]["video_id"]
    arrays = dataset.stage(video_id, "detect")
    return {name: arrays.read(name) for name in DETECT_ARRAYS}


@pytest.fixture(scope="module")
def clean_detect(prefect_api, dask_cluster, office_clip, tmp_path_factory):
    """The clip ingested and detected once without faults, in this process's Prefect API."""
    from handlabel.flows.ingest import run_ingest
    from handlabel.flows.pipeline import run_stage

    store = tmp_path_factory.mktemp("clean") / "store"
    config = HandlabelConfig(ingest=IngestConfig(chunk_frames=CHUNK))
    address = dask_cluster.scheduler_address
    assert run_ingest([str(office_clip)], str(store), config, dask_address=address).is_completed()
    assert run_stage("detect", str(store), config, dask_address=address).is_completed()
    return store, config


def test_sigkill_during_ingest_then_a_rerun_stores_exactly_the_video(office_clip, ingest,
                                                                      tmp_path):
    store = tmp_path / "store"
    slow = {"chunk_frames": CHUNK, "compression": {"codec": "zstd", "level": 15}}
    config = tmp_path / "slow.yaml"  # zstd level 15: about 1 s per chunk, time to kill
    config.write_text(f"ingest: {json.dumps(slow)}\ndask: {{n_workers: 1}}\n")
    cli = start_cli("ingest", office_clip, "--store", store, "-c", config,
                    log=tmp_path / "ingest.log")
    wait_for(lambda: chunks_done_while_running(store, "ingest") >= 2, what="2 chunks ingested")
    survivors = kill_and_reap(cli)
    assert survivors == [], f"left running after the CLI was killed: {survivors}"

    status = CliRunner().invoke(app, ["status", str(store)])
    assert status.exit_code == 1 and "INT" in status.output, status.output
    kept = {p: p.stat().st_mtime_ns for p in store.glob("videos/*/frames/c/[01]/**/*")
            if p.is_file()}
    assert kept, "the chunks done before the kill are on disk"
    state, _ = ingest([office_clip], store, **slow)  # on the session's API and cluster
    assert state.is_completed(), state.message
    dataset = DatasetStore(str(store), create=False)
    row = dataset.manifest.table().iloc[0]
    assert row["ingest_state"] == "done"
    assert {p: p.stat().st_mtime_ns for p in kept} == kept, "done chunks are not written again"
    stored = dataset.video(row["video_id"]).read()
    expected = np.stack([rgb for rgb, _ in iter_frames(str(office_clip))])
    np.testing.assert_array_equal(stored, expected)


def test_sigkill_during_detect_with_a_second_run_refused_then_a_rerun_equals_a_clean_run(
        clean_detect, dask_cluster, office_clip, config_file, tmp_path):
    from handlabel.flows.pipeline import run_stage

    clean_store, config = clean_detect
    store = tmp_path / "store"
    subprocess.run(["cp", "-r", str(clean_store), str(store)], check=True)
    cli = start_cli("detect", store, "--overwrite", "-c", config_file(""),
                    log=tmp_path / "detect.log")
    wait_for(lambda: run_owner(str(store)) is not None, what="the first run's lock")
    second = subprocess.run([*HANDLABEL, "run", office_clip, "--store", store], env=cli_env(),
                            capture_output=True, text=True, timeout=120)  # while it starts
    assert second.returncode == 2
    assert f"in use by handlabel detect (pid {cli.pid}" in second.stdout, second.stdout
    assert "Traceback" not in second.stdout + second.stderr

    wait_for(lambda: chunks_done_while_running(store, "detect") >= 2, what="2 chunks detected")
    survivors = kill_and_reap(cli)
    assert survivors == [], f"left running after the CLI was killed: {survivors}"
    status = CliRunner().invoke(app, ["status", str(store)])
    assert status.exit_code == 1 and "interrupted" in status.output, status.output

    assert run_stage("detect", str(store), config, dask_address=dask_cluster.scheduler_address
                     ).is_completed()  # resumes the chunks not done
    expected, got = detect_arrays(clean_store), detect_arrays(store)
    for name in DETECT_ARRAYS:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-5, err_msg=name)


def test_a_dask_worker_killed_mid_stage_loses_nothing(clean_detect, dask_cluster, tmp_path):
    from distributed import Client

    from handlabel.flows.pipeline import run_stage

    clean_store, config = clean_detect
    store = tmp_path / "store"
    subprocess.run(["cp", "-r", str(clean_store), str(store)], check=True)
    address = dask_cluster.scheduler_address
    with Client(address) as client:
        pids = client.run(os.getpid)
    killed, done_at_kill = [], []

    def kill_one_worker():
        wait_for(lambda: chunks_done_while_running(store, "detect") >= 1, what="a chunk")
        victim = next(iter(pids.values()))
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        done_at_kill.append(chunks_done_while_running(store, "detect"))

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    state = run_stage("detect", str(store), config, overwrite=True, dask_address=address)
    killer.join(timeout=120)
    assert killed, "no worker was killed"
    total = DatasetStore(str(store), create=False).stage(
        only_video_id(store), "detect").n_chunks
    assert done_at_kill and done_at_kill[0] < total, \
        f"the kill landed after the last chunk ({done_at_kill} of {total}): nothing was tested"
    if not state.is_completed():  # the killed worker's chunk failed: a rerun finishes it
        assert run_stage("detect", str(store), config, dask_address=address).is_completed()
    expected, got = detect_arrays(clean_store), detect_arrays(store)
    for name in DETECT_ARRAYS:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-5, err_msg=name)
    with Client(address) as client:
        client.wait_for_workers(2, timeout=60)  # the nanny restarted it for the next tests


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs; yields (mount point, remount callable); skipped where the test
    cannot mount (not root, or no mount permission in this container)."""
    point = tmp_path / "mnt"
    point.mkdir()

    def mount(size: str) -> Path:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                 str(point)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or 'not root'}")
        return point

    def remount_read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)

    yield mount, remount_read_only
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _task_run_counts(flow_state) -> dict[str, int]:
    """How many times each task run of the flow run that ended in ``flow_state`` ran, as
    the Prefect API recorded it (a retried task run counts 2)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=flow_run)
    return {run.name: run.run_count for run in runs if run.name.startswith("ingest ")}


def test_a_full_disk_fails_the_video_in_one_line_without_retrying_or_leaving_chunks(
        ingest, office_clip, tmpfs):
    mount, _ = tmpfs
    store = mount("6m") / "store"
    # lossless frames (tens of MB): the default H.264 ones would fit in 6 MB
    state, results = ingest([office_clip], store, chunk_frames=CHUNK,
                            compression=CompressionConfig(codec="zstd"))
    assert state.is_failed()
    error = results[office_clip.name].error
    assert error.endswith("no space left on device") and "\n" not in error, error
    assert _task_run_counts(state) == {f"ingest {office_clip.name}": 1}, \
        "a full disk is not retried"
    dataset = DatasetStore(str(store), create=False)
    row = dataset.manifest.table().iloc[0]
    assert row["ingest_state"] == "failed"
    assert dataset.video(row["video_id"]) is None, "the partial chunks are removed"


def test_a_read_only_store_is_refused_in_one_line_and_left_as_it_was(ingest, tmpfs):
    mount, remount_read_only = tmpfs
    store = mount("64m") / "store"
    state, _ = ingest([GESTURE_AVI], store)
    assert state.is_completed()
    before = DatasetStore(str(store), create=False).manifest.table()
    remount_read_only()
    result = CliRunner().invoke(app, ["detect", str(store)])
    assert result.exit_code == 2
    assert result.output.strip() == f"{store}: cannot write the store (read-only file system)"
    after = DatasetStore(str(store), create=False).manifest.table()
    assert after.equals(before)


def test_a_prefect_api_that_does_not_start_in_time_is_one_line(tmp_path):
    home = tmp_path / "prefect-home"
    result = subprocess.run(
        [*HANDLABEL, "ingest", str(GESTURE_AVI), "--store", str(tmp_path / "store")],
        env=cli_env(PREFECT_HOME=str(home), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1"),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the temporary Prefect API did not start within 1 s" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    servers = [p for p in psutil.process_iter(["cmdline", "environ"])
               if "uvicorn" in " ".join(p.info["cmdline"] or [])
               and (p.info["environ"] or {}).get("PREFECT_HOME") == str(home)]
    assert servers == [], "the server that did not answer in time is stopped"


def test_a_pipe_named_like_a_video_fails_alone_instead_of_hanging(ingest, copy_to, tmp_path):
    from handlabel.tasks.identify import identify

    good = copy_to(GESTURE_AVI, "good.avi")
    fifo = good.parent / "camera.mp4"
    os.mkfifo(fifo)
    done = []
    worker = threading.Thread(target=lambda: done.append(identify(str(fifo))), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done, "hashing a pipe blocked"
    assert "not a regular file" in done[0].error
    state, results = ingest([good, fifo], tmp_path / "store")
    assert state.is_failed()
    assert results["good.avi"].outcome == "ingested"
    assert results["camera.mp4"].outcome == "failed"


def test_sources_without_a_video_exit_2_before_anything_starts(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no video here")
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["run", str(empty), "--store", str(store)])
    assert result.exit_code == 2 and "no video files here" in result.output
    assert not store.exists(), "no store is created for nothing"
