"""The H.264 frame codec on real frames: near-lossless, small, chunk by chunk, and readable by
any Zarr reader (through the package's entry point) without the project's code."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys

import numpy as np
import pytest

from handlabel.config import IngestConfig
from handlabel.storage.frames import frame_codecs
from handlabel.storage.store import DatasetStore
from handlabel.storage.video import FrameChunk, iter_frames
from handlabel.storage.video_codec import H264FrameCodec, encode_frames
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one

from .conftest import GESTURE_AVI, OFFICE_MP4
from .media import psnr

CHUNK = 8


def office_frames(n: int) -> np.ndarray:
    frames = []
    for rgb, _ in iter_frames(str(OFFICE_MP4)):
        frames.append(rgb)
        if len(frames) == n:
            return np.stack(frames)


def stored(tmp_path, frames: np.ndarray, codec: str) -> DatasetStore:
    store = DatasetStore(str(tmp_path / codec))
    video = store.create_video("v", height=frames.shape[1], width=frames.shape[2],
                               chunk_frames=CHUNK, codecs=frame_codecs(codec, 1), attrs={})
    for index, start in enumerate(range(0, len(frames), CHUNK)):
        part = frames[start : start + CHUNK]
        video.write_chunk(FrameChunk(index, start, part, np.arange(len(part)) / 30.0))
    video._truncate(len(frames))
    return store


def chunk_bytes(store: DatasetStore) -> int:
    from pathlib import Path

    return sum(p.stat().st_size for p in (Path(store.url) / "videos/v/frames").rglob("*")
               if p.is_file())


@pytest.fixture(scope="module")
def office(sample) -> np.ndarray:
    return office_frames(20)  # 2.5 chunks: the last one partial


def test_h264_chunks_read_back_near_lossless_at_a_fraction_of_zstd(office, tmp_path):
    coded, lossless = stored(tmp_path, office, "h264"), stored(tmp_path, office, "zstd")
    frames = DatasetStore(coded.url).video("v").read()
    assert frames.shape == office.shape and frames.dtype == np.uint8
    assert psnr(frames, office) > 40
    np.testing.assert_array_equal(DatasetStore(lossless.url).video("v").read(), office)
    assert chunk_bytes(coded) * 20 < chunk_bytes(lossless)


def test_each_chunk_decodes_alone(office, tmp_path):
    video = DatasetStore(stored(tmp_path, office, "h264").url).video("v")
    whole = video.read()
    for start in (0, CHUNK, 2 * CHUNK):  # the partial last chunk too
        np.testing.assert_array_equal(video.read(start + 1, start + 3), whole[start + 1: start + 3])


def test_odd_frame_sizes_keep_their_shape(office, tmp_path):
    odd = np.ascontiguousarray(office[:CHUNK, 101:276, 300:513])  # 175 x 213
    frames = DatasetStore(stored(tmp_path, odd, "h264").url).video("v").read()
    assert frames.shape == odd.shape and psnr(frames, odd) > 38


def test_a_plain_zarr_reader_opens_h264_frames_without_importing_handlabel(office, tmp_path):
    store = stored(tmp_path, office[:CHUNK], "h264")
    # the script never imports handlabel: zarr loads the codec by its entry point
    script = ("import sys, zarr; a = zarr.open_array(sys.argv[1]); "
              "print(a.shape, int(a[3].mean()))")
    out = subprocess.run([sys.executable, "-c", script, f"{store.url}/videos/v/frames"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split(")")[0] == f"({CHUNK}, 720, 1280, 3"
    assert abs(int(out.stdout.split()[-1]) - int(office[3].mean())) <= 1


def test_h264_refuses_arrays_that_are_not_rgb_frames(tmp_path):
    store = DatasetStore(str(tmp_path / "s"))
    with pytest.raises(ValueError, match=r"\(frames, ..., height, width, 3\) uint8"):
        store.root.create_array("x", shape=(4, 8, 8), dtype="uint8",
                                **frame_codecs("h264"))


def test_per_slot_crops_are_separate_streams(office, tmp_path):
    """(N, 2, h, w, 3) as the detect stage stores crops: each slot reads back as itself,
    and an empty (black) slot stays black."""
    crops = np.zeros((CHUNK + 3, 2, 64, 96, 3), np.uint8)
    crops[:, 1] = office[: CHUNK + 3, 300:364, 600:696]
    store = DatasetStore(str(tmp_path / "s"))
    array = store.root.create_array("crops", shape=crops.shape, chunks=(CHUNK, 2, 64, 96, 3),
                                    dtype="uint8", **frame_codecs("h264"))
    array[:] = crops
    back = store.root["crops"][:]
    assert back.shape == crops.shape
    assert psnr(back[:, 1], crops[:, 1]) > 40
    assert back[:, 0].max() <= 2


def test_the_same_frames_give_the_same_bytes_on_one_cpu_or_all(office, tmp_path):
    """Reruns and workers must store identical chunks: x264's output depends on its thread
    count, which it would otherwise take from the CPUs the process may use."""
    np.save(tmp_path / "frames.npy", office[:CHUNK])
    script = ("import os, sys, hashlib, numpy as np; os.sched_setaffinity(0, {0}); "
              "from handlabel.storage.video_codec import H264FrameCodec, encode_frames; "
              "print(hashlib.sha256(encode_frames(np.load(sys.argv[1]), H264FrameCodec()))"
              ".hexdigest())")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "frames.npy")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    here = hashlib.sha256(encode_frames(office[:CHUNK], H264FrameCodec())).hexdigest()
    assert out.stdout.strip() == here


def test_two_ingests_of_one_video_store_identical_frames(tmp_path):
    """x264's macroblock-tree rate control made this fail (other bytes on the second ingest in
    one process), which broke a rerun's equality with a clean run."""
    stored_frames = []
    for name in ("first", "second"):
        store = DatasetStore(str(tmp_path / name))
        identity = identify(str(GESTURE_AVI), store.url)
        ingest_one(store, identity, IngestConfig(chunk_frames=8), False, logging.getLogger("t"))
        stored_frames.append(store.video(identity.video_id).read())
    np.testing.assert_array_equal(*stored_frames)
