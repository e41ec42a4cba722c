"""The stage registry drives every place that lists stages: the manifest's columns, the
pending work of a rerun, the CLI's commands and prefect.yaml's deployments; and the chunked
runner starts each video's own step as soon as its chunks are done, on every worker."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handlabel.config import HandlabelConfig
from handlabel.flows import stages as registry
from handlabel.flows.cli import app
from handlabel.flows.deployments import stage_deployments_yaml
from handlabel.flows.rerun import first_pending, pending_work
from handlabel.storage.manifest import STAGES as MANIFEST_COLUMNS
from handlabel.storage.store import DatasetStore

from .conftest import ROOT


def test_the_registry_names_the_manifest_stages_in_run_order():
    assert registry.MANIFEST_STAGES == MANIFEST_COLUMNS
    assert registry.NAMES[0] == "ingest" and registry.NAMES[-1] == "export"
    for stage in registry.STAGES[1:]:  # each takes from a stage before it
        assert registry.NAMES.index(stage.takes) < registry.NAMES.index(stage.name)


@pytest.mark.parametrize("stage", registry.STAGES, ids=registry.NAMES)
def test_every_stage_names_a_flow_and_currency_test_that_import(stage):
    flow = stage.load_flow()
    parameters = inspect.signature(flow.fn).parameters
    assert {"store", "config", "overwrite"} <= set(parameters)
    assert ("videos" in parameters) == stage.per_video, "a rerun limits per-video stages"
    if stage.current is not None:  # (store, unit, the whole config)
        test = inspect.signature(registry._load(stage.current))
        assert len(test.parameters) == 3
        assert test.parameters["config"].annotation in (HandlabelConfig, "HandlabelConfig")


def test_an_unknown_stage_is_named_with_the_stages_there_are():
    with pytest.raises(ValueError, match="no stage 'detection'; the stages are ingest, detect"):
        registry.stage("detection")


def test_prefect_yaml_holds_a_deployment_for_every_stage_after_ingest():
    text = (ROOT / "prefect.yaml").read_text()
    assert stage_deployments_yaml() in text, \
        "stale: run python -m handlabel.flows.deployments"
    for stage in registry.STAGES[1:]:
        assert f"- name: {stage.name}-store" in text


def test_the_cli_has_a_command_for_every_stage():
    for stage in registry.STAGES:
        result = CliRunner().invoke(app, [stage.name, "--help"])
        assert result.exit_code == 0, result.output
        assert stage.summary.split()[0] in result.output


# A toy stage: what docs/architecture.md ("Adding a stage") shows, plugged into the registry.
TOY = registry.Stage("toy", "Count each video's frames.", "videos", "ingest",
                     "handlabel.flows.weight:weight_flow", f"{__name__}:toy_is_current")


def toy_is_current(store: DatasetStore, video_id: str, config: HandlabelConfig) -> bool:
    return (Path(store.url) / f"toy-{video_id}").exists()


def test_a_stage_added_to_the_registry_is_planned_by_rerun(tmp_path, monkeypatch):
    import handlabel.flows.rerun as rerun

    store = DatasetStore(str(tmp_path / "store"))
    for video_id in ("aaa", "bbb"):
        store.manifest.upsert(video_id, name=f"{video_id}.mp4", ingest_state="done")
    monkeypatch.setattr(rerun, "STAGES", (registry.STAGES[0], TOY))
    assert pending_work(store, HandlabelConfig()) == {"toy": ["aaa", "bbb"]}
    (tmp_path / "store" / "toy-aaa").touch()
    assert pending_work(store, HandlabelConfig()) == {"toy": ["bbb"]}
    monkeypatch.setattr(rerun, "stages_from", lambda first: (TOY,))
    assert first_pending({"toy": ["bbb"]}, "ingest") == "toy"


def test_each_videos_own_step_follows_its_chunks_and_steps_overlap(
        dask_cluster, tmp_path):
    """Three videos of two chunks each on two worker processes: every video's step (a
    second's work) is submitted as soon as its chunks are done, without waiting for another
    video's step, so the steps of different videos overlap in time."""
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from handlabel.flows.chunked import run_chunked_stage

    from . import stage_tasks

    @flow(task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address))
    def toy_stage():
        return run_chunked_stage("toy", str(tmp_path), ["v0", "v1", "v2"], 0.5, False,
                                 stage_tasks.TASKS)

    state = toy_stage(return_state=True)
    assert state.is_completed(), state.message
    spans = stage_tasks.read_spans(tmp_path)
    steps = sorted(spans["after"].values())
    assert len(steps) == 3 and set(spans["finish"]) == {"v0", "v1", "v2"}
    overlapping = [(a, b) for a in steps for b in steps if a < b and b[0] < a[1]]
    assert overlapping, f"the video steps ran one after another: {steps}"
    for video, (start, _) in spans["after"].items():  # after its own chunks, not all chunks
        assert start >= max(end for (v, _), (_, end) in spans["chunk"].items() if v == video)


def test_a_failing_chunk_fails_its_video_only_and_skips_its_step(dask_cluster, tmp_path):
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from handlabel.flows.chunked import run_chunked_stage

    from . import stage_tasks

    @flow(task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address))
    def toy_stage():
        return run_chunked_stage("toy", str(tmp_path), ["v0", "bad"], 0.0, False,
                                 stage_tasks.TASKS)

    state = toy_stage(return_state=True)
    assert state.is_failed()
    assert "failed for 1 of 2 videos: bad: chunk 1:" in state.message
    spans = stage_tasks.read_spans(tmp_path)
    assert set(spans["after"]) == {"v0"}
    assert set(spans["finish"]) == {"v0", "bad"}
    assert spans["errors"]["bad"].startswith("chunk 1:")


def test_an_archive_gets_runs_of_chunks_and_a_failing_run_keeps_its_chunks_done(
        dask_cluster, tmp_path):
    """With one chunk task wanted per stage, each video's chunks run as one task; a run that
    fails at its second chunk has written its first, and names the run and the error."""
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    from handlabel.flows.chunked import RunSizes, run_chunked_stage

    from . import stage_tasks

    @flow(task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address))
    def toy_stage():
        return run_chunked_stage("toy", str(tmp_path), ["v0", "bad"], 0.0, False,
                                 stage_tasks.TASKS, sizes=RunSizes(tasks_per_stage=1))

    state = toy_stage(return_state=True)
    assert state.is_failed()
    assert "bad: chunks 0-1:" in state.message and "a damaged chunk" in state.message
    spans = stage_tasks.read_spans(tmp_path)
    assert spans["run"] == {("v0", 0): (0, 1), ("v0", 1): (0, 1), ("bad", 0): (0, 1)}
    assert set(spans["after"]) == {"v0"}


def test_exports_store_wide_unit_is_the_one_its_tasks_write():
    from handlabel.tasks.export import DATASET_FILES

    assert registry.stage("export").store_unit == DATASET_FILES
