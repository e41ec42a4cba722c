"""The live progress is read from the store: a detect stage with 2 of 3 chunks recorded
shows 2/3 chunks and their frames while its run lives, as a plain line where the output is
not a terminal."""

from __future__ import annotations

import io
import logging

from rich.console import Console

import handlabel.flows.progress as progress
from handlabel.config import DetectConfig, HandlabelConfig, IngestConfig
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.detect import prepare_detect
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one

from .conftest import GESTURE_AVI


def _store_mid_detect(tmp_path) -> DatasetStore:
    store = DatasetStore(str(tmp_path / "store"))
    identity = identify(str(GESTURE_AVI), store.url)
    ingest_one(store, identity, IngestConfig(chunk_frames=8), False, logging.getLogger("t"))
    prepare_detect(store, identity.video_id, DetectConfig(), overwrite=False)  # running now
    for chunk in (0, 2):
        store.stage(identity.video_id, "detect").mark_done(chunk)
    return store


def test_a_running_stage_shows_its_recorded_chunks(sample, tmp_path):
    store = _store_mid_detect(tmp_path)
    assert progress.snapshot(store, HandlabelConfig()) == [], "no live run: interrupted"
    with store_run(store.url, "test"):
        (detect,) = progress.snapshot(store, HandlabelConfig())
    assert (detect.stage, detect.done, detect.total, detect.unit) == ("detect", 2, 3, "chunks")
    assert detect.frames == 16


def test_off_a_terminal_progress_is_plain_periodic_lines(sample, tmp_path, monkeypatch):
    store = _store_mid_detect(tmp_path)
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.05)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    with store_run(store.url, "test"), \
            progress.progress_display(store.url, HandlabelConfig(), console):
        import time

        time.sleep(0.5)
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("detect: 2/3 chunks") for line in lines), lines


def test_a_videos_own_step_shows_its_frames_on_a_line_of_its_own(sample, tmp_path):
    """Reconstruct with its 3 network chunks done and the sequence fit 8 of 20 frames in:
    the chunks read 3/3, and the fit has its own line, in frames."""
    from handlabel.storage.stage_arrays import ArraySpec

    store = DatasetStore(str(tmp_path / "store"))
    identity = identify(str(GESTURE_AVI), store.url)
    ingest_one(store, identity, IngestConfig(chunk_frames=8), False, logging.getLogger("t"))
    video_id = identity.video_id
    store.manifest.start_stage(video_id, "reconstruct", "key")
    spec = {"present": ArraySpec((2,), "bool", False)}
    for name in ("network", "reconstruct"):
        arrays = store.create_stage(video_id, name, n_frames=20, chunk_frames=8, spec=spec,
                                    attrs={})
    for chunk in range(3):
        store.stage(video_id, "network").mark_done(chunk)
    arrays.record_step_progress(8, 20)
    with store_run(store.url, "test"):
        chunks, fit = progress.snapshot(store, HandlabelConfig())
    assert (chunks.stage, chunks.done, chunks.total) == ("reconstruct", 3, 3)
    assert (fit.stage, fit.done, fit.total, fit.unit) == ("reconstruct fit", 8, 20, "frames")
    assert fit.line(None) == "reconstruct fit: 8/20 frames, 1 videos fitting"


def test_the_rate_is_never_negative_when_a_video_leaves_the_fit_line(monkeypatch):
    """The fit line sums the frames of the videos still fitting: when one is done its frames
    leave the sum, and the rate is measured again from there instead of going negative."""
    clock = iter([0.0, 10.0, 11.0, 15.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    watcher = progress._Watcher("unused", HandlabelConfig(), Console(file=io.StringIO()))

    def fit_line(frames: int) -> progress.StageProgress:
        return progress.StageProgress("reconstruct fit", frames, 1494, "frames", frames)

    assert watcher.rate(fit_line(100)) is None  # first seen
    assert watcher.rate(fit_line(600)) == 50.0  # 500 frames in 10 s
    assert watcher.rate(fit_line(220)) is None  # a video done: its frames left the sum
    assert watcher.rate(fit_line(420)) == 50.0  # 200 frames in the 4 s since
