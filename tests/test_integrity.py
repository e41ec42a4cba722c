"""Store integrity on a real clip's store: every chunk carries a checksum; a flipped byte, a
deleted chunk or a truncated manifest row is named by ``handlabel verify``; a rerun that
reads a damaged chunk fails that unit with one line; ``verify --repair`` gives back arrays
equal to the clean run's, on a local folder and on a real S3 endpoint (moto)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr
from prefect.task_runners import ThreadPoolTaskRunner
from typer.testing import CliRunner

from handlabel.flows.cli import app
from handlabel.storage.integrity import DamagedChunkError, has_checksum
from handlabel.storage.store import DatasetStore
from handlabel.storage.verify import store_arrays

from .conftest import GESTURE_AVI
from .pipeline_runs import CONFIG


@pytest.fixture(scope="module")
def clean_store(gesture_store) -> Path:
    """Made on the session's Dask workers, where the repairs run too: the sequence fit's
    floats depend on the threads it runs on."""
    return gesture_store


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG.model_dump(mode="json")))
    return path


@pytest.fixture
def store(clean_store, tmp_path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(clean_store, copy)
    return copy


def video_id(store: Path) -> str:
    return next(p.name for p in (store / "videos").iterdir() if p.is_dir())


def flip_bytes(path: Path, count: int = 16) -> None:
    """Flip ``count`` bytes in the middle of a stored object, as a failing disk would."""
    data = bytearray(path.read_bytes())
    middle = (len(data) - 4) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# (array under videos/<id>/, chunk, what is done to its object)
DAMAGE = [("frames", 2, "flip"), ("detect/crops", 1, "flip"), ("detect/keypoints", 0, "flip"),
          ("reconstruct/joints_3d", 1, "flip"), ("detect/present", 2, "delete")]


def damage(store: Path, fs=None) -> list[str]:
    """Damage the chunks of DAMAGE; returns the lines verify must print for them."""
    vid, expected = video_id(store), []
    for array, chunk, how in DAMAGE:
        folder = store / "videos" / vid / array / "c" / str(chunk)
        obj = next(p for p in folder.rglob("*") if p.is_file())
        flip_bytes(obj) if how == "flip" else obj.unlink()
        problem = "checksum mismatch" if how == "flip" else "missing"
        expected.append(f"damaged: videos/{vid}/{array} chunk {chunk}: {problem}")
    return expected


def arrays(store: str) -> dict[str, np.ndarray]:
    opened = DatasetStore(store, create=False)
    return {path: array[:] for path, array in store_arrays(opened)}


def assert_same_arrays(store: str, reference: str) -> None:
    got, want = arrays(store), arrays(reference)
    assert got.keys() == want.keys()
    for path, values in want.items():
        assert np.array_equal(got[path], values, equal_nan=values.dtype.kind == "f"), path


def test_every_array_carries_a_checksum_and_a_clean_store_verifies(clean_store):
    opened = DatasetStore(str(clean_store), create=False)
    found = list(store_arrays(opened))
    assert len(found) > 40 and all(has_checksum(array) for _, array in found)
    result = CliRunner().invoke(app, ["verify", str(clean_store)])
    assert result.exit_code == 0, result.output
    assert "no damaged chunk" in result.output
    assert "before chunk checksums" not in CliRunner().invoke(app, ["status",
                                                                    str(clean_store)]).output


def test_damage_is_named_fails_its_unit_and_repair_gives_back_the_clean_arrays(
        store, clean_store, config_file, dask_cluster):
    from handlabel.flows.pipeline import run_pipeline, stages_on

    expected = damage(store)
    result = CliRunner().invoke(app, ["verify", str(store)])
    assert result.exit_code == 1, result.output
    for line in expected:
        assert line in result.output
    assert result.output.count("damaged:") == len(expected)

    opened, vid = DatasetStore(str(store), create=False), video_id(store)
    for array, chunk, how in DAMAGE:  # every unit reads through these: each read fails
        if how != "flip":
            continue
        group, _, name = array.rpartition("/")
        reader = (opened.stage(vid, group).read if group else
                  lambda _name: opened.video(vid).read())
        with pytest.raises(DamagedChunkError, match=f"{array}/c/{chunk}/.* --repair"):
            reader(name)

    with stages_on(ThreadPoolTaskRunner(max_workers=1)):  # a rerun reads the damaged frames
        state = run_pipeline([], str(store), CONFIG, first_stage="detect",
                             overwrite_stage="detect")
    assert not state.is_completed()
    row = DatasetStore(str(store), create=False).manifest.table().iloc[0]
    assert row["detect_state"] == "failed"
    chunk = f"{store}/videos/{video_id(store)}/frames/c/2/0/0/0"
    assert chunk in row["detect_error"] and "\n" not in row["detect_error"]
    assert f"handlabel verify {store} --repair" in row["detect_error"]

    repaired = CliRunner().invoke(app, ["verify", str(store), "--repair", "-c",
                                        str(config_file), "--dask-address",
                                        dask_cluster.scheduler_address])
    assert repaired.exit_code == 0, repaired.output
    assert CliRunner().invoke(app, ["verify", str(store)]).exit_code == 0
    assert_same_arrays(str(store), str(clean_store))


def test_a_truncated_manifest_row_is_named_and_rebuilt(store, config_file, dask_cluster):
    row = store / "manifest" / f"{video_id(store)}.parquet"
    row.write_bytes(row.read_bytes()[:200])
    result = CliRunner().invoke(app, ["verify", str(store)])
    assert result.exit_code == 1
    assert f"damaged: manifest/{row.name}: not a readable manifest row" in result.output
    repaired = CliRunner().invoke(app, ["verify", str(store), "--repair", "-c",
                                        str(config_file), "--dask-address",
                                        dask_cluster.scheduler_address])
    assert repaired.exit_code == 0, repaired.output
    table = DatasetStore(str(store), create=False).manifest.table()
    assert table.loc[0, "source_uri"].endswith(GESTURE_AVI.name)
    assert (table.filter(like="_state").iloc[0] == "done").all()


def test_a_store_written_before_checksums_is_read_and_decoded_unchecked(tmp_path):
    """Arrays without crc32c (stores from before) still verify, by decoding each chunk."""
    store = DatasetStore(str(tmp_path / "old"))
    group = store.root.require_group("videos/v")
    group.create_array("frames", data=np.arange(24, dtype="uint8").reshape(6, 2, 2),
                       chunks=(2, 2, 2))
    result = CliRunner().invoke(app, ["verify", str(tmp_path / "old")])
    assert result.exit_code == 0, result.output
    assert "1 arrays written before checksums" in result.output
    assert not has_checksum(zarr.open_array(str(tmp_path / "old/videos/v/frames")))
    status = CliRunner().invoke(app, ["status", str(tmp_path / "old")])
    assert "1 videos were stored before chunk checksums" in status.output
