"""Live progress of a run, read from the store itself: the manifest's states, each chunked
stage's completion records, and the training metrics. The store is the one place every
worker writes, wherever it runs, so the display needs no channel from the workers.

On a terminal: one rich display, a bar per stage with units done of total, frames/s and time
left, and training's epoch with its latest losses. Elsewhere (CI, deployments, a pipe):
one plain line per active stage every ``PLAIN_EVERY_S``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore, StoreError

from .stages import STAGES, Stage

POLL_S = 1.0
PLAIN_EVERY_S = 15.0


@dataclass
class StageProgress:
    stage: str
    done: int  # units done: chunks for chunked stages, epochs for train, else videos
    total: int
    unit: str
    frames: int = 0  # frames in the chunks done (chunked stages)
    note: str = ""

    def line(self, rate: float | None) -> str:
        speed = f", {rate:.1f} frames/s" if rate else ""
        note = f", {self.note}" if self.note else ""
        return f"{self.stage}: {self.done}/{self.total} {self.unit}{speed}{note}"


def snapshot(store: DatasetStore, config: HandlabelConfig) -> list[StageProgress]:
    """Each stage with work under way or done in this store, as read now."""
    table = store.manifest.table()
    table = table[table["superseded_by"].isna()]
    stages = []
    for stage in STAGES:
        if not stage.in_manifest:
            if (running := stage.read_progress(store, config)) is not None:
                stages.append(StageProgress(stage.name, running[0], running[1], running[2],
                                            note=running[3]))
            continue
        states = table[f"{stage.name}_state"]
        if not (states == "running").any():
            continue
        if stage.units == "model":
            stages.append(_train_progress(store, config))
        elif stage.records is not None:
            stages.append(_chunk_progress(store, table, stage.name, stage.records))
            if stage.step is not None and (step := _step_progress(store, table, stage)):
                stages.append(step)
        else:
            stages.append(StageProgress(stage.name, int((states == "done").sum()), len(table),
                                        "videos"))
    return stages


def _chunk_progress(store: DatasetStore, table, stage: str, records: str) -> StageProgress:
    """Chunks done of the running and done videos; ``records`` is the stage-array group
    holding the chunk records ("": the frames' own, ingest's)."""
    done = total = frames = 0
    for row in table[table[f"{stage}_state"].isin(["running", "done"])].itertuples():
        video = store.video(row.video_id)
        group = video if not records or video is None else store.stage(row.video_id, records)
        if group is None:
            continue
        with contextlib.suppress(KeyError, ValueError):  # being created right now
            n, flags = group.n_chunks, group.done_chunks()
            chunk_frames = video.chunk_frames if video is not None else 0
            done, total, frames = done + len(flags), total + n, frames + len(flags) * chunk_frames
    running = int((table[f"{stage}_state"] == "running").sum())
    return StageProgress(stage, done, total, "chunks", frames, f"{running} videos running")


def _step_progress(store: DatasetStore, table, stage: Stage) -> StageProgress | None:
    """The per-video step of the running videos (reconstruct's sequence fit), in frames:
    one line of its own, so a long fit does not hide behind "13/13 chunks"."""
    done = total = started = 0
    for row in table[table[f"{stage.name}_state"] == "running"].itertuples():
        arrays = store.stage(row.video_id, stage.step)
        with contextlib.suppress(KeyError, ValueError):  # being created right now
            if arrays is not None and (progress := arrays.step_progress()) is not None:
                done, total, started = done + progress[0], total + progress[1], started + 1
    if not started:
        return None
    return StageProgress(f"{stage.name} fit", done, total, "frames", done,
                         f"{started} videos fitting")


def _train_progress(store: DatasetStore, config: HandlabelConfig) -> StageProgress:
    epochs = config.train.resolved("epochs")
    metrics = store.model().read_metrics() if store.has_model() else None
    if metrics is None or not len(metrics):
        return StageProgress("train", 0, epochs, "epochs", note="preparing the crops")
    last = metrics.iloc[-1]
    return StageProgress("train", len(metrics), epochs, "epochs",
                         note=f"reprojection {last['reprojection_px']:.1f} px, 2D branch "
                              f"{last['branch_px']:.1f} px")


class _Watcher:
    def __init__(self, store_url: str, config: HandlabelConfig, console: Console):
        self.store_url, self.config, self.console = store_url, config, console
        self.stop = threading.Event()
        self.first_seen: dict[str, tuple[float, int]] = {}  # stage -> (time, frames)
        self.last_frames: dict[str, int] = {}  # stage -> frames at the last reading

    def rate(self, stage: StageProgress) -> float | None:
        """Frames per second since the stage was first seen; measured again from now when
        its frames fall (a video whose fit is done leaves the fit line's sum)."""
        now = time.monotonic()
        since, frames = self.first_seen.setdefault(stage.stage, (now, stage.frames))
        last = self.last_frames.get(stage.stage, frames)
        self.last_frames[stage.stage] = stage.frames
        if stage.frames < last:
            self.first_seen[stage.stage] = (now, stage.frames)
            return None
        return (stage.frames - frames) / (now - since) if now - since > 2 and stage.frames \
            else None

    def read(self) -> list[StageProgress]:
        try:
            return snapshot(DatasetStore(self.store_url, create=False), self.config)
        except (StoreError, OSError, KeyError, ValueError):  # not created yet, or mid-write
            return []

    def live(self) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.completed}/{task.total} {task.fields[unit]}"), TextColumn(
            "{task.fields[speed]}"), TimeRemainingColumn(), TextColumn("{task.fields[note]}"))
        with Progress(*columns, console=self.console, transient=False) as bars:
            tasks: dict[str, int] = {}
            while not self.stop.wait(POLL_S):
                for stage in self.read():
                    if stage.stage not in tasks:
                        tasks[stage.stage] = bars.add_task(stage.stage, total=stage.total,
                                                           unit=stage.unit, speed="", note="")
                    rate = self.rate(stage)
                    bars.update(tasks[stage.stage], completed=stage.done, total=stage.total,
                                speed=f"{rate:.1f} frames/s" if rate else "",
                                note=stage.note)

    def plain(self) -> None:
        while not self.stop.wait(PLAIN_EVERY_S):
            for stage in self.read():
                self.console.print(stage.line(self.rate(stage)), highlight=False)


@contextlib.contextmanager
def progress_display(store_url: str, config: HandlabelConfig, console: Console
                     ) -> Iterator[None]:
    """Show the store's progress while the block runs."""
    watcher = _Watcher(store_url, config, console)
    target = watcher.live if console.is_terminal else watcher.plain
    thread = threading.Thread(target=target, name="handlabel-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        watcher.stop.set()
        thread.join(timeout=10)
