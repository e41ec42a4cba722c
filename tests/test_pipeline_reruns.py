"""Reruns on real clips: a configuration change invalidates only the stages it affects;
every form of ``handlabel rerun`` on a store with a failed video; what a plain rerun would
redo, known from the store alone; the CLI's rerun with nothing and with something to do."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import handlabel.tasks.detect as detect_task
import handlabel.tasks.reconstruct as reconstruct_task
from handlabel.config import FitConfig, ReconstructConfig
from handlabel.storage.store import DatasetStore

from .conftest import GESTURE_AVI
from .pipeline_runs import (
    CONFIG,
    completed,
    exported,
    finished,
    rerun,
    run,
)


def test_a_config_change_invalidates_only_the_stages_it_affects(complete_store, monkeypatch):
    store = complete_store
    before = store.manifest.table().iloc[0]
    network_runs = []
    real = reconstruct_task.reconstruct_chunk

    def counted(*args, **kwargs):
        network_runs.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", counted)
    refit = ReconstructConfig(fit=FitConfig(steps=50))
    changed = CONFIG.model_copy(update={"reconstruct": refit})
    assert run([GESTURE_AVI], store.url, changed).is_completed()
    assert network_runs == [], "a fit-only change reuses the network step's chunks"
    after = store.manifest.table().iloc[0]
    for stage in ("ingest", "detect", "weight", "train"):
        assert after[f"{stage}_finished"] == before[f"{stage}_finished"], stage
    for stage in ("reconstruct", "export"):
        assert after[f"{stage}_finished"] > before[f"{stage}_finished"], stage


def test_every_rerun_form_on_a_store_with_a_failed_video(prefect_api, mirrored_clip,
                                                         monkeypatch, tmp_path):
    """A video whose detect failed on one chunk: --failed-only redoes exactly that chunk,
    then what depends on it (its weights, the retrain on the grown set, every video's labels,
    since the model changed); a plain rerun of a complete store redoes nothing; --stage
    redoes that stage for every video and only what follows it."""
    store, real, calls = tmp_path / "store", detect_task.detect_chunk, []
    broken = {"chunk": (mirrored_clip.name, 1)}

    def detect(dataset, video_id, chunk, config, detector, frames=None):
        calls.append((dataset.manifest.get(video_id)["name"], chunk))
        if calls[-1] == broken.get("chunk"):
            raise OSError("camera cable pulled")
        return real(dataset, video_id, chunk, config, detector, frames)

    monkeypatch.setattr(detect_task, "detect_chunk", detect)
    assert run([GESTURE_AVI, mirrored_clip], store).is_failed()
    before = finished(store)
    assert pd.isna(before.loc[mirrored_clip.name, "weight_finished"])
    assert rerun(store, "weight", failed_only=True) is None, "nothing failed in weight"

    broken.clear()
    calls.clear()
    assert rerun(store, failed_only=True).is_completed()
    assert calls == [(mirrored_clip.name, 1)], "only the failed chunk is detected again"
    after = finished(store)
    for stage in ("ingest", "detect", "weight"):
        assert after.loc[GESTURE_AVI.name, f"{stage}_finished"] == \
            before.loc[GESTURE_AVI.name, f"{stage}_finished"], stage
    assert after.loc[GESTURE_AVI.name, "reconstruct_finished"] > \
        before.loc[GESTURE_AVI.name, "reconstruct_finished"], "the retrain made it stale"
    assert (DatasetStore(str(store)).manifest.table()["export_state"] == "done").all()

    calls.clear()
    assert rerun(store).is_completed()
    assert calls == [] and finished(store).equals(after), "a complete store: nothing redone"

    assert rerun(store, "export").is_completed()
    redone = finished(store)
    assert (redone["export_finished"] > after["export_finished"]).all()
    assert redone.drop(columns="export_finished").equals(after.drop(columns="export_finished"))


def test_what_a_plain_rerun_would_redo_is_known_from_the_store_alone(complete_store):
    """Each config change is pending at the stage it changes (the later stages follow it only
    once it has run); a deleted dataset file is pending too; a complete store has nothing."""
    from handlabel.flows.rerun import pending_work
    from handlabel.tasks.export import DATASET_FILES

    store = completed(complete_store)
    video = store.manifest.table()["video_id"].iloc[0]
    assert pending_work(store, CONFIG) == {}
    changed = {"weight": CONFIG.weight.model_copy(update={"outlier_factor": 0.4}),
               "train": CONFIG.train.model_copy(update={"epochs": 3}),
               "reconstruct": CONFIG.reconstruct.model_copy(update={"refine_steps": 3}),
               "export": CONFIG.export.model_copy(update={"report_samples": 3})}
    expected = {"weight": [video], "train": ["model"], "reconstruct": [video],
                "export": [video, DATASET_FILES]}
    for stage, section in changed.items():
        config = CONFIG.model_copy(update={stage: section})
        assert pending_work(store, config) == {stage: expected[stage]}, stage
    Path(exported(store, "coco_wholebody_hands.json")).unlink()
    assert pending_work(store, CONFIG) == {"export": [DATASET_FILES]}


def test_a_rerun_with_nothing_to_do_answers_without_a_server_and_one_with_work_does_it(
        complete_store, dask_cluster, tmp_path):
    """``handlabel rerun``: on a complete store it starts no Prefect API, no cluster, writes
    no run log; with a dataset file gone it runs export alone and writes the file again."""
    import yaml
    from typer.testing import CliRunner

    from handlabel.flows.cli import app

    store = completed(complete_store)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG.model_dump(mode="json")))
    logs = Path(store.url, "logs")
    before = set(logs.glob("run-*.log"))
    result = CliRunner().invoke(app, ["rerun", store.url, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output and "report:" in result.output
    assert set(logs.glob("run-*.log")) == before, "no run was started"
    assert "Starting temporary server" not in result.output

    finished_before = finished(store.url)
    Path(exported(store, "hands.parquet")).unlink()
    result = CliRunner().invoke(app, ["rerun", store.url, "--config", str(config),
                                      "--dask-address", dask_cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert "to do: export dataset files" in result.output
    assert Path(exported(store, "hands.parquet")).is_file()
    assert finished(store.url).equals(finished_before), "no video's stage was redone"
