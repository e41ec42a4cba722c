"""The per-chunk pattern shared by the chunked stages (detect, reconstruct, export): prepare
each video (which chunks are still to do), submit its chunks to the Dask workers in runs of
consecutive chunks, run the video's own step (reconstruct's sequence fit, export's video
files) as soon as that video's chunks are done, and record its outcome. Nothing waits on
another video: the per-video steps of many videos run on every worker at once, beside other
videos' chunks.

A task's unit grows with the archive (``RunSizes``): a short job keeps one chunk per task,
so its few chunks spread over the workers; an archive gets runs of up to 16 chunks per task,
so the task runs the Prefect API records per hour of footage stay in the hundreds (every
task run costs the API tens of milliseconds: ``docs/performance.md``). Each chunk still
writes its own completion record, so a run cut short resumes at its first missing chunk."""

from __future__ import annotations

import contextlib
import math
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from prefect import Task, get_run_logger
from prefect.states import Completed, Failed

from handlabel.config import DaskConfig


def _error(result) -> str | None:
    return f"{result!r}" if isinstance(result, BaseException) else None


@dataclass(frozen=True)
class RunSizes:
    """How many consecutive chunks one task does: enough for the stage to have about
    ``tasks_per_stage`` chunk tasks over all its videos (each video's share in proportion to
    its chunks), never more than ``max_chunks`` per task.

    >>> RunSizes(tasks_per_stage=64, max_chunks=16).runs([0, 1, 2, 3, 4, 6, 7], videos=1)
    [[0], [1], [2], [3], [4], [6], [7]]
    >>> RunSizes(tasks_per_stage=64, max_chunks=16).runs([0, 1, 2, 3, 4, 6, 7], videos=30)
    [[0, 1, 2, 3], [4], [6, 7]]
    """

    tasks_per_stage: int = 64
    max_chunks: int = 16

    @classmethod
    def of(cls, dask: DaskConfig) -> RunSizes:
        return cls(dask.chunk_tasks_per_stage, dask.max_chunks_per_task)

    def runs(self, chunks: list[int], videos: int) -> list[list[int]]:
        """``chunks`` (a video's, ascending) as runs of consecutive chunks, given how many
        ``videos`` the stage runs (the archive's size, as this video's chunks times it)."""
        size = min(self.max_chunks,
                   max(1, math.ceil(len(chunks) * videos / max(self.tasks_per_stage, 1))))
        runs: list[list[int]] = []
        for chunk in chunks:
            if runs and len(runs[-1]) < size and chunk == runs[-1][-1] + 1:
                runs[-1].append(chunk)
            else:
                runs.append([chunk])
        return runs


def run_label(run: list[int]) -> str:
    """'chunk 3' or 'chunks 3-6': how a run is named in logs and errors."""
    return f"chunk {run[0]}" if len(run) == 1 else f"chunks {run[0]}-{run[-1]}"


@dataclass(frozen=True)
class ChunkedTasks:
    """A chunked stage's tasks: ``prepare(store, video, config, overwrite)`` gives the chunks
    still to do (None: up to date), ``chunk(store, video, chunks, config)`` does a run of
    them (a list of consecutive chunk indices),
    ``after(store, video, config)`` is the video's own step once its chunks are done (or
    None), ``finish(store, video, error)`` records the outcome in the manifest."""

    prepare: Task
    chunk: Task
    finish: Task
    after: Task | None = None


@dataclass
class _Video:
    chunks: dict = field(default_factory=dict)  # run future -> its chunk indices
    left: int = 0
    error: str | None = None


class _Completions:
    """Futures of any kind, handed back in the order they finish (Prefect's
    ``as_completed`` takes a fixed list; here futures keep being added as others finish)."""

    def __init__(self):
        self._done: queue.Queue = queue.Queue()
        self.outstanding = 0

    def watch(self, future, kind: str, video: str) -> None:
        self.outstanding += 1
        future.add_done_callback(lambda f: self._done.put((f, kind, video)))

    def next(self):
        item = self._done.get()
        self.outstanding -= 1
        return item


def run_chunked_stage(stage: str, store_url: str, videos: list[str], config, overwrite: bool,
                      tasks: ChunkedTasks,
                      annotation: Callable[[], contextlib.AbstractContextManager] | None = None,
                      sizes: RunSizes = RunSizes()):
    """Run ``tasks.chunk`` on every chunk still to do (in runs: ``sizes``), each video's
    ``tasks.after`` as soon as its chunks all succeeded, then its ``tasks.finish``; a video's
    failure does not stop the others. ``annotation`` makes the context the chunk and
    ``after`` tasks are submitted in (a Dask resource)."""
    logger = get_run_logger()
    place = annotation or contextlib.nullcontext
    events = _Completions()
    state = {v: _Video() for v in videos}
    skipped: list[str] = []
    total = done = 0

    def finish(video: str) -> None:
        events.watch(tasks.finish.submit(store_url, video, state[video].error), "finish", video)

    def after_chunks(video: str) -> None:
        if tasks.after is not None and state[video].error is None:
            with place():
                events.watch(tasks.after.submit(store_url, video, config), "after", video)
        else:
            finish(video)

    for video in videos:
        events.watch(tasks.prepare.submit(store_url, video, config, overwrite), "prepare",
                     video)
    while events.outstanding:
        future, kind, video = events.next()
        result = future.result(raise_on_failure=False)
        record = state[video]
        if kind == "prepare":
            if (error := _error(result)) is not None:  # nothing started: nothing to record
                record.error = error
            elif result is None:
                skipped.append(video)
            elif not result:  # nothing to redo chunk by chunk: straight to the video's step
                after_chunks(video)
            else:
                with place():
                    record.chunks = {tasks.chunk.submit(store_url, video, run, config): run
                                     for run in sizes.runs(sorted(result), len(videos))}
                for run_future in record.chunks:
                    events.watch(run_future, "chunk", video)
                record.left = len(record.chunks)
                total += len(result)
        elif kind == "chunk":
            done += len(record.chunks[future])
            record.left -= 1
            if (error := _error(result)) is not None and record.error is None:
                record.error = f"{run_label(record.chunks[future])}: {error}"
            logger.info("%s: [%d/%d] chunks done", stage, done, total)
            if record.left == 0:
                after_chunks(video)
        elif kind == "after":
            if (error := _error(result)) is not None:
                record.error = error
            finish(video)
        elif (error := _error(result)) is not None:  # the outcome itself was not recorded
            record.error = record.error or f"finish: {error}"
        elif result.get(f"{stage}_state") == "failed":  # finish found the work incomplete
            record.error = record.error or result[f"{stage}_error"]
    errors = {v: s.error for v, s in state.items() if s.error is not None}
    logger.info("%s: %d chunks of %d videos done (%d up to date)", stage, total,
                len(videos) - len(skipped), len(skipped))
    if errors:
        return Failed(message=f"{stage} failed for {len(errors)} of {len(videos)} videos: "
                      + "; ".join(f"{v}: {e}" for v, e in errors.items()))
    return Completed(message=f"{len(videos) - len(skipped)} videos done, "
                             f"{len(skipped)} up to date")
