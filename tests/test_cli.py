"""The handlabel command line: exit codes, the status table, the configuration reference."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from handlabel.flows.cli import app
from handlabel.flows.reference import config_reference

from .conftest import GESTURE_AVI, ROOT

runner = CliRunner()


def test_ingest_reports_failures_in_exit_code_and_status(dask_cluster, clips, copy_to, tmp_path):
    copy_to(GESTURE_AVI, "good.avi")
    copy_to(clips["text"], "notes.mp4")
    store = str(tmp_path / "store")
    address = dask_cluster.scheduler_address
    result = runner.invoke(app, ["ingest", str(tmp_path / "inputs"), "--store", store,
                                 "--dask-address", address])
    assert result.exit_code == 1, result.output
    assert "1 of 2 videos failed: notes.mp4" in result.output
    status = runner.invoke(app, ["status", store])
    assert status.exit_code == 1
    assert "good.avi" in status.output and "notes.mp4" in status.output
    assert "not a video FFmpeg can read" in status.output

    ok = runner.invoke(app, ["ingest", str(GESTURE_AVI), "--store", str(tmp_path / "ok"),
                             "--dask-address", address])
    assert ok.exit_code == 0, ok.output
    assert "done" in ok.output


def test_missing_source_store_and_bad_config_exit_2_with_the_name(tmp_path):
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.mp4"), "--store", "x"])
    assert missing.exit_code == 2 and "nope.mp4: no such file" in missing.output
    status = runner.invoke(app, ["status", str(tmp_path / "nostore")])
    assert status.exit_code == 2 and "no handlabel store" in status.output
    config = tmp_path / "c.yaml"
    config.write_text("ingest: {chunk_frames: -1}\n")
    bad = runner.invoke(app, ["ingest", str(GESTURE_AVI), "--store", "x", "-c", str(config)])
    assert bad.exit_code == 2 and "c.yaml" in bad.output and "chunk_frames" in bad.output


def test_configuration_reference_in_docs_is_current():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    fix = "run: handlabel config --reference > docs/configuration.md"
    assert documented == config_reference(), fix


def test_config_command_prints_valid_yaml_defaults(tmp_path):
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0
    path = Path(tmp_path / "defaults.yaml")
    path.write_text(result.output)
    assert runner.invoke(app, ["config", "-c", str(path)]).output == result.output


def test_rerun_export_and_eval_refuse_bad_arguments_by_name(tmp_path):
    bad_stage = runner.invoke(app, ["rerun", str(tmp_path), "--stage", "paint"])
    assert bad_stage.exit_code == 2 and "--stage must be one of" in bad_stage.output
    no_store = runner.invoke(app, ["rerun", str(tmp_path / "nostore")])
    assert no_store.exit_code == 2 and "no handlabel store" in no_store.output
    bad_format = runner.invoke(app, ["export", str(tmp_path), "--format", "gif"])
    assert bad_format.exit_code == 2 and "--format" in bad_format.output
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"samples": []}')
    no_model = runner.invoke(app, ["eval", str(manifest), "--store", str(tmp_path / "none")])
    assert no_model.exit_code == 2 and "no handlabel store" in no_model.output
