"""A store on a real S3 endpoint (moto's server on loopback, reached through s3fs), from
ingest to export, with the stages' tasks on separate Dask worker processes: what the
workers write, the CLI process reads afresh (no stale listing), and the endpoint and
credentials come from the config's storage options."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import fsspec.config
import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from handlabel.config import StorageConfig
from handlabel.flows.cli import app

from .conftest import GESTURE_AVI
from .test_pipeline import CONFIG, STAGES

BUCKET = "handlabel-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free loopback port; stopped by its pid."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
def s3_options(s3_endpoint, monkeypatch):
    """The endpoint's fsspec options; the test's changes to fsspec's config are undone."""
    import s3fs

    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    monkeypatch.setitem(fsspec.config.conf, "s3", {})
    monkeypatch.setenv("FSSPEC_S3", "{}")
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    if not fs.exists(BUCKET):
        fs.mkdir(BUCKET)
    return options


def test_a_store_on_s3_runs_every_stage_and_reruns_nothing(s3_options, dask_cluster):
    from handlabel.flows.pipeline import run_pipeline

    store = f"s3://{BUCKET}/store"
    config = CONFIG.model_copy(update={"storage": StorageConfig(options={"s3": s3_options})})
    address = dask_cluster.scheduler_address
    state = run_pipeline([str(GESTURE_AVI)], store, config, dask_address=address)
    assert state.is_completed(), state.message

    status = CliRunner().invoke(app, ["status", store])  # FSSPEC_S3, set by the run
    assert status.exit_code == 0, status.output
    hands = pd.read_parquet(f"{store}/export/hands.parquet", storage_options=s3_options)
    assert len(hands) > 0 and hands["video_name"].unique().tolist() == [GESTURE_AVI.name]

    from handlabel.storage.store import DatasetStore

    before = DatasetStore(store, create=False).manifest.table()
    assert (before[[f"{s}_state" for s in STAGES]] == "done").all(axis=None)
    assert run_pipeline([str(GESTURE_AVI)], store, config, dask_address=address).is_completed()
    after = DatasetStore(store, create=False).manifest.table()
    for stage in STAGES:
        assert after.loc[0, f"{stage}_finished"] == before.loc[0, f"{stage}_finished"], stage


def test_damage_on_s3_is_named_and_repaired(s3_options, dask_cluster, gesture_store, tmp_path):
    """A copy of a clean store on S3 with a flipped frames, crops, detect and reconstruct
    chunk: verify names each, and --repair gives back the clean arrays."""
    import s3fs
    import yaml

    from .test_integrity import arrays, flip_bytes

    local = gesture_store  # made with CONFIG on the session's Dask workers; only read here
    config = CONFIG.model_copy(update={"storage": StorageConfig(options={"s3": s3_options})})
    fs = s3fs.S3FileSystem(**s3_options, skip_instance_cache=True)
    remote = f"{BUCKET}/damaged"
    fs.put(str(local), remote, recursive=True)
    video = next(p.name for p in (local / "videos").iterdir() if p.is_dir())
    damaged_chunks = (("frames", "c/1/0/0/0"), ("detect/crops", "c/2/0/0/0/0"),
                      ("detect/keypoints", "c/0/0/0/0"), ("reconstruct/joints_3d", "c/1/0/0/0"))
    for array, chunk in damaged_chunks:
        key = f"{remote}/videos/{video}/{array}/{chunk}"
        damaged = tmp_path / "object"
        damaged.write_bytes(fs.cat_file(key))
        flip_bytes(damaged)
        fs.pipe_file(key, damaged.read_bytes())
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    store = f"s3://{remote}"
    result = CliRunner().invoke(app, ["verify", store, "-c", str(config_file)])
    assert result.exit_code == 1, result.output
    for array, chunk in damaged_chunks:
        assert f"damaged: videos/{video}/{array} chunk {chunk.split('/')[1]}: checksum " \
            "mismatch" in result.output
    repaired = CliRunner().invoke(app, ["verify", store, "--repair", "-c", str(config_file),
                                        "--dask-address", dask_cluster.scheduler_address])
    assert repaired.exit_code == 0, repaired.output
    got, want = arrays(store), arrays(str(local))
    assert got.keys() == want.keys()
    for path, values in want.items():
        assert np.array_equal(got[path], values, equal_nan=values.dtype.kind == "f"), path
