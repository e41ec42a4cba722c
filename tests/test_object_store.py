"""A store on a real S3 endpoint (moto's server on loopback, reached through s3fs), from
ingest to export, with the stages' tasks on separate Dask worker processes: what the
workers write, the CLI process reads afresh (no stale listing), and the endpoint and
credentials come from the config's storage options. Then damage on S3: a server-side copy
of that store with flipped chunks, named by ``handlabel verify`` and repaired by
``--repair``.

One module, one pipeline on S3: the two tests had run side by side on two xdist workers
and slowed each other most (docs/performance.md, "The test suite")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from handlabel.config import StorageConfig
from handlabel.flows.cli import app
from handlabel.storage.store import DatasetStore

from .conftest import BUCKET, GESTURE_AVI
from .pipeline_runs import CONFIG, STAGES
from .test_integrity import arrays, flip_bytes


@pytest.fixture
def s3_config(s3_options):
    return CONFIG.model_copy(update={"storage": StorageConfig(options={"s3": s3_options})})


@pytest.fixture(scope="module")
def built():
    """Filled by the first test (its pipeline run); the repair test copies that store."""
    return {}


def _s3_store(built: dict, config, dask_cluster) -> str:
    """The gesture clip's store on S3, made by one pipeline run for the module."""
    from handlabel.flows.pipeline import run_pipeline

    if "store" not in built:
        store = f"s3://{BUCKET}/store"
        state = run_pipeline([str(GESTURE_AVI)], store, config,
                             dask_address=dask_cluster.scheduler_address)
        assert state.is_completed(), state.message
        built["store"] = store
    return built["store"]


def test_a_store_on_s3_runs_every_stage_and_reruns_nothing(s3_options, s3_config,
                                                           dask_cluster, built):
    from handlabel.flows.pipeline import run_pipeline

    store = _s3_store(built, s3_config, dask_cluster)
    status = CliRunner().invoke(app, ["status", store])  # FSSPEC_S3, set by the run
    assert status.exit_code == 0, status.output
    hands = pd.read_parquet(f"{store}/export/hands.parquet", storage_options=s3_options)
    assert len(hands) > 0 and hands["video_name"].unique().tolist() == [GESTURE_AVI.name]

    before = DatasetStore(store, create=False).manifest.table()
    assert (before[[f"{s}_state" for s in STAGES]] == "done").all(axis=None)
    address = dask_cluster.scheduler_address
    assert run_pipeline([str(GESTURE_AVI)], store, s3_config,
                        dask_address=address).is_completed()
    after = DatasetStore(store, create=False).manifest.table()
    for stage in STAGES:
        assert after.loc[0, f"{stage}_finished"] == before.loc[0, f"{stage}_finished"], stage


def test_damage_on_s3_is_named_and_repaired(s3_options, s3_config, dask_cluster, built,
                                           tmp_path):
    """A copy of the store with two flipped label chunks: verify names each, and --repair
    gives back the arrays as they were. The chunks are the labels' (the repair reruns
    reconstruct and export): finding, removing and redoing an object on S3 is the same code
    for every array, and the repair of the whole chain, from the frames on, is tested on a
    local store (``tests/test_integrity.py``), where it costs a third of the time."""
    import s3fs
    import yaml

    from handlabel.storage.fs import configure_filesystems

    clean = _s3_store(built, s3_config, dask_cluster)
    configure_filesystems(s3_config.storage.options)  # as a run does (undone after the test)
    fs = s3fs.S3FileSystem(**s3_options, skip_instance_cache=True)
    remote = f"{BUCKET}/damaged"
    fs.copy(clean.removeprefix("s3://"), remote, recursive=True)  # on the server
    store = f"s3://{remote}"
    want = arrays(store)
    video = DatasetStore(store, create=False).manifest.table()["video_id"].iloc[0]
    damaged_chunks = (("reconstruct/joints_3d", "c/1/0/0/0"),
                      ("reconstruct/keypoints_2d", "c/2/0/0/0"))
    for array, chunk in damaged_chunks:
        key = f"{remote}/videos/{video}/{array}/{chunk}"
        damaged = tmp_path / "object"
        damaged.write_bytes(fs.cat_file(key))
        flip_bytes(damaged)
        fs.pipe_file(key, damaged.read_bytes())
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(s3_config.model_dump(mode="json")))

    result = CliRunner().invoke(app, ["verify", store, "-c", str(config_file)])
    assert result.exit_code == 1, result.output
    for array, chunk in damaged_chunks:
        assert f"damaged: videos/{video}/{array} chunk {chunk.split('/')[1]}: checksum " \
            "mismatch" in result.output
    repaired = CliRunner().invoke(app, ["verify", store, "--repair", "-c", str(config_file),
                                        "--dask-address", dask_cluster.scheduler_address])
    assert repaired.exit_code == 0, repaired.output
    got = arrays(store)
    assert got.keys() == want.keys()
    for path, values in want.items():
        assert np.array_equal(got[path], values, equal_nan=values.dtype.kind == "f"), path
