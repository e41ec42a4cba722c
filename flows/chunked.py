"""The per-chunk pattern shared by the chunked stages (detect, reconstruct, export): prepare
each video (which chunks are still to do), submit its chunks to the Dask workers, run the
video's own step (reconstruct's sequence fit, export's video files) as soon as that video's
chunks are done, and record its outcome. Nothing waits on another video: the per-video steps
of many videos run on every worker at once, beside other videos' chunks."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from prefect import Task, get_run_logger
from prefect.states import Completed, Failed


def _error(result) -> str | None:
    return f"{result!r}" if isinstance(result, BaseException) else None


@dataclass(frozen=True)
class ChunkedTasks:
    """A chunked stage's tasks: ``prepare(store, video, config, overwrite)`` gives the chunks
    still to do (None: up to date), ``chunk(store, video, chunk, config)`` does one,
    ``after(store, video, config)`` is the video's own step once its chunks are done (or
    None), ``finish(store, video, error)`` records the outcome in the manifest."""

    prepare: Task
    chunk: Task
    finish: Task
    after: Task | None = None


@dataclass
class _Video:
    chunks: dict = field(default_factory=dict)  # chunk future -> chunk index
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
                      annotation: Callable[[], contextlib.AbstractContextManager] | None = None):
    """Run ``tasks.chunk`` on every chunk still to do, each video's ``tasks.after`` as soon
    as its chunks all succeeded, then its ``tasks.finish``; a video's failure does not stop
    the others. ``annotation`` makes the context the chunk and ``after`` tasks are submitted
    in (a Dask resource)."""
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
                    record.chunks = {tasks.chunk.submit(store_url, video, c, config): c
                                     for c in result}
                for chunk_future in record.chunks:
                    events.watch(chunk_future, "chunk", video)
                record.left = len(result)
                total += len(result)
        elif kind == "chunk":
            done += 1
            record.left -= 1
            if (error := _error(result)) is not None and record.error is None:
                record.error = f"chunk {record.chunks[future]}: {error}"
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
