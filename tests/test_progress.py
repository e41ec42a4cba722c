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
