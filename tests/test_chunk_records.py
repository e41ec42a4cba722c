"""Completion records under concurrency: chunk tasks of one video, in separate processes,
marking their chunks at the same time lose no flag."""

from __future__ import annotations

import multiprocessing

import numpy as np

from handlabel.storage.stage_arrays import ArraySpec
from handlabel.storage.store import DatasetStore

CHUNKS, PROCESSES = 48, 6


def _mark(store_url: str, chunks: list[int], start) -> None:
    start.wait()
    arrays = DatasetStore(store_url, create=False).stage("video", "detect")
    for chunk in chunks:
        arrays.write_chunk(chunk, chunk * 2, {"value": np.full(2, chunk, np.int32)})


def test_parallel_chunk_writers_lose_no_completion_flag(tmp_path):
    store = DatasetStore(str(tmp_path / "store"))
    store.videos.create_group("video")
    store.create_stage("video", "detect", n_frames=CHUNKS * 2, chunk_frames=2,
                       spec={"value": ArraySpec((), "int32", -1)}, attrs={})
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_mark, args=(store.url, list(range(k, CHUNKS, PROCESSES)),
                                                   start)) for k in range(PROCESSES)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    arrays = store.stage("video", "detect")
    assert arrays.done_chunks() == set(range(CHUNKS))
    np.testing.assert_array_equal(arrays.read("value"), np.repeat(np.arange(CHUNKS), 2))
