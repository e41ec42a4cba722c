"""The ingest flow on Prefect + Dask, on the real samples and generated clips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from handlabel.config import CameraConfig, CompressionConfig, HandlabelConfig
from handlabel.storage.store import DatasetStore
from handlabel.storage.video import iter_frames

from .conftest import GESTURE_AVI, OFFICE_MP4, STEREO_CAM0, VFR_PTS_MS

AVI_K = [[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]]


def chunk_files(store: Path) -> dict[str, float]:
    """Modification time of every stored frame chunk."""
    return {str(p): p.stat().st_mtime_ns for p in store.glob("videos/*/frames/c/**/*")
            if p.is_file()}


def video_of(store: Path, name: str):
    dataset = DatasetStore(str(store))
    row = dataset.manifest.table().set_index("name").loc[name]
    return row, dataset.video(row["video_id"])


def test_samples_and_vfr_clip_are_stored_exactly_and_concurrently(ingest, clips, tmp_path):
    store = tmp_path / "store"
    camera = CameraConfig(per_video={"*.avi": AVI_K})
    state, results = ingest([OFFICE_MP4, STEREO_CAM0, GESTURE_AVI, clips["vfr"]], store,
                            max_long_side=320, chunk_frames=32, camera=camera,
                            compression=CompressionConfig(codec="zstd"))  # lossless: exact
    assert state.is_completed(), state.message
    assert {r.outcome for r in results.values()} == {"ingested"}
    assert len({r.worker for r in results.values()}) == 2, "both Dask workers took videos"

    row, video = video_of(store, "right_hand_office.mp4")
    assert (row["n_frames"], row["width"], row["height"], row["fps"]) == (621, 320, 180, 30.0)
    expected = np.stack([rgb for rgb, _ in iter_frames(str(OFFICE_MP4), max_long_side=320)])
    np.testing.assert_array_equal(video.read(), expected)
    assert video.group["frames"].chunks == (32, 180, 320, 3)
    assert video.attrs["intrinsics_estimated"] and row["intrinsics_estimated"]
    assert video.attrs["K"][0][0] == pytest.approx(160 / np.tan(np.radians(30)))

    row, video = video_of(store, "gesture_mjpg_320x240.avi")
    assert row["n_frames"] == 20 and not video.attrs["intrinsics_estimated"]
    assert video.attrs["K"] == AVI_K  # given at 320x240, stored unchanged at 320x240

    row, video = video_of(store, "vfr.mp4")
    np.testing.assert_allclose(video.timestamps(), np.array(VFR_PTS_MS) / 1000, atol=1e-3)
    assert row["ingest_state"] == "done" and len(row["content_hash"]) == 64


def test_rerun_decodes_nothing_and_renamed_copy_is_recognised(ingest, copy_to, tmp_path):
    store = tmp_path / "store"
    original = copy_to(GESTURE_AVI, "gesture.avi")
    state, _ = ingest([original], store, chunk_frames=8)
    assert state.is_completed()
    before = chunk_files(store)
    started = DatasetStore(str(store)).manifest.table()["ingest_started"].tolist()

    renamed = copy_to(GESTURE_AVI, "same_bytes_other_name.avi")
    state, results = ingest([original, renamed], store, chunk_frames=8)
    assert state.is_completed()
    assert [(r.outcome, r.frames_written) for r in results.values()] == [("skipped", 0)]
    assert chunk_files(store) == before
    table = DatasetStore(str(store)).manifest.table()
    assert len(table) == 1 and table["ingest_started"].tolist() == started
    assert sorted(table.loc[0, "aliases"]) == sorted([str(original), str(renamed)])


def test_bad_files_fail_only_their_own_rows(ingest, clips, copy_to, tmp_path):
    store = tmp_path / "store"
    good = copy_to(GESTURE_AVI, "good.avi")
    bad = [copy_to(clips[k], name) for k, name in
           [("text", "notes.mp4"), ("truncated_avi", "cut.avi"), ("empty_file", "empty.mp4")]]
    state, results = ingest([good.parent], store)
    assert state.is_failed()
    assert "3 of 4 videos failed" in state.message
    assert all(p.name in state.message for p in bad)
    assert results["good.avi"].outcome == "ingested"

    table = DatasetStore(str(store)).manifest.table().set_index("name")
    assert table.loc["good.avi", "ingest_state"] == "done"
    errors = table.loc[[p.name for p in bad], "ingest_error"]
    assert (table.loc[[p.name for p in bad], "ingest_state"] == "failed").all()
    assert errors["notes.mp4"].startswith(str(bad[0])) and "FFmpeg" in errors["notes.mp4"]
    assert "truncated: decoded 10 of the 20 frames" in errors["cut.avi"]
    assert errors["empty.mp4"].endswith("the file is empty")


def test_empty_folder_completes_with_nothing_to_do(ingest, tmp_path):
    (tmp_path / "empty").mkdir()
    state, results = ingest([tmp_path / "empty"], tmp_path / "store")
    assert state.is_completed() and results == {}
    assert DatasetStore(str(tmp_path / "store")).manifest.table().empty


def _interrupt_after(store: Path, name: str, kept_chunks: int) -> int:
    """Make the store look as if ingest died after ``kept_chunks`` chunks; returns frames lost."""
    row, video = video_of(store, name)
    video.group["chunk_done"][kept_chunks:] = False
    lost = 0
    for index in range(kept_chunks, video.n_chunks):
        for chunk in store.glob(f"videos/{row['video_id']}/frames/c/{index}/**/*"):
            if chunk.is_file():
                os.remove(chunk)
        lost += min(video.chunk_frames, video.n_frames - index * video.chunk_frames)
    video.update_attrs(complete=False)
    DatasetStore(str(store)).manifest.upsert(row["video_id"], ingest_state="running")
    return lost


def test_interrupted_ingest_writes_only_its_missing_chunks(ingest, tmp_path):
    store = tmp_path / "store"
    state, _ = ingest([GESTURE_AVI], store, chunk_frames=6)
    expected = video_of(store, "gesture_mjpg_320x240.avi")[1].read()
    kept = {k: v for k, v in chunk_files(store).items() if "/frames/c/0/" in k}
    lost = _interrupt_after(store, "gesture_mjpg_320x240.avi", kept_chunks=1)

    state, results = ingest([GESTURE_AVI], store, chunk_frames=6)
    result = results["gesture_mjpg_320x240.avi"]
    assert state.is_completed()
    assert (result.outcome, result.frames_written, lost) == ("resumed", 14, 14)
    row, video = video_of(store, "gesture_mjpg_320x240.avi")
    np.testing.assert_array_equal(video.read(), expected)
    assert row["ingest_state"] == "done" and video.done_chunks() == {0, 1, 2, 3}
    assert {k: v for k, v in chunk_files(store).items() if "/frames/c/0/" in k} == kept


def test_overwrite_and_config_change_redo_the_video(ingest, tmp_path):
    store = tmp_path / "store"
    ingest([GESTURE_AVI], store, chunk_frames=8)
    _, results = ingest([GESTURE_AVI], store, chunk_frames=8, overwrite=True)
    assert results["gesture_mjpg_320x240.avi"].frames_written == 20
    _, results = ingest([GESTURE_AVI], store, chunk_frames=5)
    assert results["gesture_mjpg_320x240.avi"].outcome == "ingested"
    assert video_of(store, "gesture_mjpg_320x240.avi")[1].group["frames"].chunks[0] == 5


def test_a_rerun_reads_again_only_the_sources_it_needs(ingest, clips, copy_to, tmp_path):
    """A store with a done video whose file has since moved, and a failed one: a rerun
    resolves (and re-ingests) only the failed video's source, so the moved file stops
    nothing; with everything done there is nothing to read at all."""
    from handlabel.flows.cli import _check_sources
    from handlabel.flows.rerun import plan_rerun

    store = tmp_path / "store"
    good = copy_to(GESTURE_AVI, "good.avi")
    copy_to(clips["text"], "notes.mp4")
    state, _ = ingest([good.parent], store)
    assert state.is_failed()
    good.rename(tmp_path / "moved.avi")
    table = DatasetStore(str(store)).manifest.table()
    for failed_only in (False, True):
        needed = plan_rerun(table, failed_only=failed_only).sources
        assert [Path(u).name for u in needed] == ["notes.mp4"]
        _check_sources(needed, HandlabelConfig())  # resolves: the moved file is not asked for
    done = table[table["ingest_state"] == "done"]
    assert plan_rerun(done).sources == [] and plan_rerun(done).first_stage == "detect"


def test_a_fixed_bad_file_is_decided_by_its_latest_content(ingest, clips, copy_to, tmp_path):
    """A broken file replaced by a good one under the same path: the old row is marked
    superseded, leaves the status and exit code, and is never redone; a copy of the old
    content elsewhere keeps its row current."""
    from typer.testing import CliRunner

    from handlabel.flows.cli import app
    from handlabel.flows.rerun import plan_rerun

    store = tmp_path / "store"
    source = copy_to(clips["text"], "clip.mp4")
    state, _ = ingest([source], store)
    assert state.is_failed()
    assert CliRunner().invoke(app, ["status", str(store)]).exit_code == 1
    broken_id = DatasetStore(str(store)).manifest.table().loc[0, "video_id"]

    copy_to(GESTURE_AVI, "clip.mp4")
    state, results = ingest([source], store)
    assert state.is_completed() and results["clip.mp4"].outcome == "ingested"
    table = DatasetStore(str(store)).manifest.table().set_index("video_id")
    assert table.loc[broken_id, "superseded_by"] == results["clip.mp4"].video_id
    status = CliRunner().invoke(app, ["status", str(store)])
    assert status.exit_code == 0, status.output
    assert "superseded" in status.output and "failed" not in status.output
    assert plan_rerun(table.reset_index(), failed_only=True).first_stage is None

    copy_to(clips["text"], "clip.mp4")  # the old content is back: current again
    state, _ = ingest([source], store)
    table = DatasetStore(str(store)).manifest.table().set_index("video_id")
    assert table["superseded_by"].isna()[broken_id]
    assert table.loc[results["clip.mp4"].video_id, "superseded_by"] == broken_id
