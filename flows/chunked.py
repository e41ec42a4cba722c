"""The per-chunk pattern shared by the detect and reconstruct flows: prepare each video
(which chunks are still to do), submit its chunks to the Dask workers, run the video's own
step after them where the stage has one (reconstruct's sequence fit), record the outcome."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from prefect import get_run_logger
from prefect.futures import as_completed
from prefect.states import Completed, Failed


def _error(result) -> str | None:
    return f"{result!r}" if isinstance(result, BaseException) else None


def run_chunked_stage(stage: str, store_url: str, videos: list[str], config, overwrite: bool,
                      prepare, chunk, finish,
                      annotation: Callable[[], contextlib.AbstractContextManager] | None = None,
                      after=None):
    """Run ``chunk`` on every chunk still to do, then ``after`` (a per-video task) once a
    video's chunks all succeeded; a video's failure does not stop the others. ``annotation``
    makes the context the chunk and ``after`` tasks are submitted in (a Dask resource)."""
    logger = get_run_logger()
    prepared = {v: prepare.submit(store_url, v, config, overwrite) for v in videos}
    chunks, errors, skipped = {}, {}, []
    for video, future in prepared.items():
        todo = future.result(raise_on_failure=False)
        if (error := _error(todo)) is not None:
            errors[video] = error
        elif todo is None:
            skipped.append(video)
        else:
            with annotation() if annotation else contextlib.nullcontext():
                chunks[video] = {chunk.submit(store_url, video, c, config): c for c in todo}
    total = sum(len(c) for c in chunks.values())
    logger.info("%s: %d chunks of %d videos to do (%d up to date)", stage, total, len(chunks),
                len(skipped))
    done = 0
    for video, futures in chunks.items():
        for future in as_completed(list(futures)):
            done += 1
            if (error := _error(future.result(raise_on_failure=False))) is not None:
                errors.setdefault(video, f"chunk {futures[future]}: {error}")
            logger.info("%s: [%d/%d] chunks done", stage, done, total)
        if after is not None and video not in errors:
            with annotation() if annotation else contextlib.nullcontext():
                result = after.submit(store_url, video, config).result(raise_on_failure=False)
            if (error := _error(result)) is not None:
                errors[video] = error
        outcome = finish.submit(store_url, video, errors.get(video)).result(
            raise_on_failure=False)
        if (error := _error(outcome)) is not None:  # the outcome itself was not recorded
            errors.setdefault(video, f"finish: {error}")
        elif outcome.get(f"{stage}_state") == "failed":  # finish found the work incomplete
            errors.setdefault(video, outcome[f"{stage}_error"])
    if errors:
        return Failed(message=f"{stage} failed for {len(errors)} of {len(videos)} videos: "
                      + "; ".join(f"{v}: {e}" for v, e in errors.items()))
    return Completed(message=f"{len(chunks)} videos done, {len(skipped)} up to date")
