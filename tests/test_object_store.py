"""A store on a real S3 endpoint (moto's server on loopback, reached through s3fs), from
ingest to export, with the stages' tasks on separate Dask worker processes: what the
workers write, the CLI process reads afresh (no stale listing), and the endpoint and
credentials come from the config's storage options."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from handlabel.config import StorageConfig
from handlabel.flows.cli import app

from .conftest import BUCKET, GESTURE_AVI
from .pipeline_runs import CONFIG, STAGES


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
