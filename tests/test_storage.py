"""The store, manifest, sources and configuration, without Prefect or Dask."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from handlabel import keys
from handlabel.config import ConfigError, IngestConfig, load_config
from handlabel.keys import stage_key
from handlabel.models.camera import intrinsics_from_fov, scale_intrinsics
from handlabel.storage.frames import frame_codecs
from handlabel.storage.manifest import STAGES
from handlabel.storage.sources import SourceNotFoundError, resolve_sources
from handlabel.storage.store import DatasetStore, StoreError
from handlabel.storage.video import FrameChunk

from .media import psnr

EXTS = IngestConfig().extensions


def memory_store() -> DatasetStore:
    return DatasetStore(f"memory://store-{uuid.uuid4().hex}")


def test_frames_round_trip_chunk_by_chunk_in_memory_store():
    store = memory_store()
    video = store.create_video("abc", height=6, width=8, chunk_frames=4,
                               codecs=frame_codecs("zstd", 1), attrs={"fps": 30.0})
    frames = np.random.default_rng(0).integers(0, 255, (10, 6, 8, 3), dtype=np.uint8)
    times = np.arange(10) / 30.0
    for index, start in enumerate(range(0, 10, 4)):
        video.write_chunk(FrameChunk(index, start, frames[start : start + 4],
                                     times[start : start + 4]))
    reopened = DatasetStore(store.url).video("abc")
    assert reopened.n_frames == 10 and reopened.n_chunks == 3
    assert reopened.done_chunks() == {0, 1, 2}
    np.testing.assert_array_equal(reopened.read(), frames)
    np.testing.assert_allclose(reopened.timestamps(), times)
    assert reopened.attrs["fps"] == 30.0
    assert reopened.group["frames"].chunks == (4, 6, 8, 3)


def test_only_chunks_whose_record_was_written_count_as_done():
    store = memory_store()
    video = store.create_video("v", height=2, width=2, chunk_frames=2, codecs={},
                               attrs={})
    block = np.zeros((2, 2, 2, 3), np.uint8)
    video.write_chunk(FrameChunk(0, 0, block, np.zeros(2)))
    video.write_chunk(FrameChunk(2, 4, block, np.zeros(2)))  # chunk 1 never arrived
    assert video.done_chunks() == {0, 2}


def test_manifest_rows_update_and_read_back_as_one_parquet_table(tmp_path):
    store = DatasetStore(str(tmp_path / "store"))
    started = store.manifest.start_stage("v1", "ingest", "hash1")
    store.manifest.upsert("v1", name="a.mp4")
    store.manifest.finish_stage("v1", "ingest", started, n_frames=12, fps=30.0)
    started = store.manifest.start_stage("v2", "ingest", "hash1")
    store.manifest.upsert("v2", name="b.mp4")
    store.manifest.finish_stage("v2", "ingest", started, error="b.mp4: the file is empty")
    store.manifest.add_aliases("v1", ["/x/a.mp4", "/y/renamed.mp4", "/x/a.mp4"])

    table = pd.read_parquet(tmp_path / "store" / "manifest")  # any Parquet reader works
    table = table.set_index("name")
    assert table.loc["a.mp4", "ingest_state"] == "done"
    assert table.loc["a.mp4", "n_frames"] == 12
    assert list(table.loc["a.mp4", "aliases"]) == ["/x/a.mp4", "/y/renamed.mp4"]
    assert table.loc["a.mp4", "ingest_seconds"] >= 0
    assert table.loc["b.mp4", "ingest_state"] == "failed"
    assert "the file is empty" in table.loc["b.mp4", "ingest_error"]
    assert all(table[f"{s}_state"].eq("pending").all() for s in STAGES if s != "ingest")
    assert list(store.manifest.table()["name"]) == ["a.mp4", "b.mp4"]


def test_manifest_rejects_unknown_columns():
    with pytest.raises(KeyError, match="not manifest columns"):
        memory_store().manifest.upsert("v", colour="red")


def test_opening_a_missing_store_names_it(tmp_path):
    with pytest.raises(StoreError, match="no handlabel store"):
        DatasetStore(str(tmp_path / "nowhere"), create=False)


def test_sources_from_folder_glob_file_and_url(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["a.mp4", "b.AVI", "sub/c.mov", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    folder = resolve_sources([str(tmp_path)], EXTS)
    assert [p.rsplit("/", 1)[-1] for p in folder] == ["a.mp4", "b.AVI", "c.mov"]
    assert resolve_sources([str(tmp_path / "*.mp4"), str(tmp_path / "a.mp4")], EXTS) == [
        str(tmp_path / "a.mp4")
    ]
    assert resolve_sources([f"file://{tmp_path}/notes.txt"], EXTS) == [str(tmp_path / "notes.txt")]
    assert resolve_sources([str(tmp_path / "sub")], [".mp4"]) == []
    with pytest.raises(SourceNotFoundError, match="no such file"):
        resolve_sources([str(tmp_path / "missing.mp4")], EXTS)
    with pytest.raises(SourceNotFoundError, match="matches no file"):
        resolve_sources([str(tmp_path / "*.mkv")], EXTS)


def test_intrinsics_from_field_of_view_and_resize():
    K = intrinsics_from_fov(1280, 720, 90.0)
    assert K[0, 0] == pytest.approx(640.0) and K[1, 1] == pytest.approx(640.0)
    assert (K[0, 2], K[1, 2]) == (639.5, 359.5)
    half = scale_intrinsics(K, 0.5, 0.5)
    assert half[0, 0] == pytest.approx(320.0) and (half[0, 2], half[1, 2]) == (319.5, 179.5)
    # a point projected at full size lands at the scaled pixel after resizing
    point = np.array([0.1, -0.2, 1.0])
    full_px = (K @ point)[:2]
    assert np.allclose((half @ point)[:2], (full_px + 0.5) * 0.5 - 0.5)


def test_stage_key_tracks_only_what_changes_results():
    base = stage_key("ingest", IngestConfig())
    assert stage_key("ingest", IngestConfig(decoder_threads=4)) == base
    assert stage_key("ingest", IngestConfig(chunk_frames=32)) != base
    assert stage_key("ingest", IngestConfig(max_long_side=640)) != base


def test_stage_key_of_a_config_alone_is_the_key_stores_already_hold(monkeypatch):
    """Stores written before the one key scheme recorded sha256 of {stage, code, config};
    a key without derived values or inputs must equal it, or every store would redo its
    stages after the upgrade."""
    import hashlib
    import json

    config = IngestConfig(chunk_frames=32)
    fields = config.model_dump(mode="json", exclude={"extensions", "decoder_threads"})
    old = json.dumps({"stage": "ingest", "code": 1, "config": fields}, sort_keys=True,
                     separators=(",", ":"))
    monkeypatch.setitem(keys.CODE_VERSIONS, "ingest", 1)
    assert stage_key("ingest", config) == hashlib.sha256(old.encode()).hexdigest()[:16]


def test_stage_key_follows_code_version_inputs_and_derived_values(monkeypatch):
    base = stage_key("export", IngestConfig(), inputs=["video@1"])
    assert stage_key("export", IngestConfig(), inputs=["video@2"]) != base
    assert stage_key("export", IngestConfig(), inputs=["video@1"], derived={"a": 1}) != base
    monkeypatch.setitem(keys.CODE_VERSIONS, "export", keys.CODE_VERSIONS["export"] + 1)
    assert stage_key("export", IngestConfig(), inputs=["video@1"]) != base
    with pytest.raises(ValueError, match="no code version for stage 'exprot'"):
        stage_key("exprot")


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest:\n  chunk_frames: 0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*chunk_frames"):
        load_config(bad)
    bad.write_text("ingest:\n  camera:\n    K: [[1, 0], [0, 1]]\n")
    with pytest.raises(ConfigError, match="3x3"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_config(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text("ingest:\n  chunk_frames: 16\n  camera:\n    assumed_fov_deg: 70\n")
    config = load_config(good)
    assert config.ingest.chunk_frames == 16 and config.ingest.camera.assumed_fov_deg == 70


def test_unchanged_files_reuse_their_hash_and_rewritten_files_are_hashed_again(tmp_path):
    import os

    from handlabel.tasks.identify import identify

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"first content")
    store = str(tmp_path / "store")
    first = identify(str(video), store)
    again = identify(str(video), store)
    assert first.hashed and not again.hashed
    assert again.content_hash == first.content_hash and again.video_id == first.video_id

    video.write_bytes(b"other content")  # same name, same size class, new bytes
    os.utime(video, ns=(1, 1))
    changed = identify(str(video), store)
    assert changed.hashed and changed.video_id != first.video_id

    renamed = tmp_path / "renamed.mp4"
    renamed.write_bytes(b"other content")
    assert identify(str(renamed), store).video_id == changed.video_id
    assert identify(str(tmp_path / "gone.mp4"), store).error.endswith("file not found")


def test_ingest_reads_and_writes_through_fsspec_urls(sample):
    """memory:// for the source and the store: PyAV reads a file object, zarr uses FsspecStore."""
    import fsspec

    from handlabel.storage.video import iter_frames
    from handlabel.tasks.identify import identify
    from handlabel.tasks.ingest import ingest_one

    from .conftest import GESTURE_AVI

    name = uuid.uuid4().hex
    source = f"memory://{name}/in/gesture.avi"
    with fsspec.open(source, "wb") as handle:
        handle.write(GESTURE_AVI.read_bytes())
    store = DatasetStore(f"memory://{name}/store")
    identity = identify(source, store.url)
    result = ingest_one(store, identity, IngestConfig(chunk_frames=8), False,
                        __import__("logging").getLogger("test"))
    assert (result.outcome, result.n_frames) == ("ingested", 20)
    expected = np.stack([rgb for rgb, _ in iter_frames(str(GESTURE_AVI))])
    stored = DatasetStore(store.url).video(identity.video_id).read()
    # the default h264 codec; this MJPEG source is noisy, which costs it a few dB
    assert stored.shape == expected.shape and psnr(stored, expected) > 34
    assert store.manifest.get(identity.video_id)["source_uri"] == source
    # memory:// reports no modification time or ETag, so its files are always hashed again
    assert identify(source, store.url).hashed
