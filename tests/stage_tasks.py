"""Toy tasks of a chunked stage for the runner's tests: each writes when it ran (a file per
run, so worker processes never share one)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from prefect import task

from handlabel.flows.chunked import ChunkedTasks


def _record(folder: str, kind: str, video: str, start: float, **extra) -> None:
    entry = {"kind": kind, "video": video, "start": start, "end": time.time(), **extra}
    name = f"{kind}-{video}-{extra.get('chunk', '')}-{time.time_ns()}.json"
    (Path(folder) / name).write_text(json.dumps(entry))


@task
def prepare(folder: str, video: str, seconds: float, overwrite: bool) -> list[int]:
    return [0, 1]


@task
def chunk(folder: str, video: str, indices: list[int], seconds: float) -> int:
    for index in indices:
        start = time.time()
        if video == "bad" and index == 1:
            raise ValueError("a damaged chunk")
        time.sleep(seconds / 5)
        _record(folder, "chunk", video, start, chunk=index, run=indices)
    return len(indices)


@task
def after(folder: str, video: str, seconds: float) -> int:
    start = time.time()
    time.sleep(seconds * 2)
    _record(folder, "after", video, start)
    return 1


@task
def finish(folder: str, video: str, error: str | None) -> dict:
    _record(folder, "finish", video, time.time(), error=error)
    return {"toy_state": "failed" if error else "done", "toy_error": error}


TASKS = ChunkedTasks(prepare, chunk, finish, after=after)


def read_spans(folder: Path) -> dict[str, dict]:
    """{kind: {video (or (video, chunk)): (start, end)}}, and each finish's error."""
    spans: dict[str, dict] = {"chunk": {}, "after": {}, "finish": {}, "errors": {}, "run": {}}
    for path in folder.glob("*.json"):
        entry = json.loads(path.read_text())
        key = (entry["video"], entry["chunk"]) if entry["kind"] == "chunk" else entry["video"]
        spans[entry["kind"]][key] = (entry["start"], entry["end"])
        if entry["kind"] == "chunk":
            spans["run"][key] = tuple(entry["run"])
        if entry["kind"] == "finish" and entry["error"]:
            spans["errors"][entry["video"]] = entry["error"]
    return spans
