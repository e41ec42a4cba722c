"""How many task runs per second one Prefect API records, and what that means for an archive.

    .venv/bin/python bench/task_runs.py [--tasks 400] [--workers 2] [--hours 1000]

A flow submits ``--tasks`` tasks that do nothing, on a thread pool in this process and on a
LocalCluster of ``--workers`` processes (started before the timing), against one temporary
Prefect API as ``handlabel run`` uses. Every task run is counted back from the API, so the
rate is what the API recorded, not what was submitted. The last table scales the measured
rate to an archive of ``--hours`` hours at 30 frames/s: one task run per chunk of 64 frames
in each of detect, reconstruct and export (today's unit), and one per run of 16 chunks.
"""

from __future__ import annotations

import argparse
import os
import time

import httpx
import pandas as pd

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # 400 lines of "Finished" otherwise
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from handlabel.config import DaskConfig
from handlabel.flows.prefect_api import drain_prefect_workers, shared_prefect_api
from handlabel.flows.runner import dask_scheduler, quiet_dask_logs

CHUNK_FRAMES = 64
CHUNKED_STAGES = 3  # detect, reconstruct, export: one task run per chunk each


@task
def nothing(index: int) -> int:
    return index


@flow
def many_tasks(count: int) -> int:
    futures = [nothing.submit(i) for i in range(count)]
    return sum(f.result() for f in futures)


def _recorded(flow_run_id) -> int:
    """Task runs the API holds for the flow run (its own count route)."""
    from prefect.settings import PREFECT_API_URL

    answer = httpx.post(f"{PREFECT_API_URL.value()}/task_runs/count",
                        json={"flow_runs": {"id": {"any_": [str(flow_run_id)]}}}, timeout=30)
    answer.raise_for_status()
    return int(answer.json())


def timed(runner, count: int) -> tuple[float, int]:
    """Seconds from submitting ``count`` tasks until the API has recorded every run (task
    states reach it as events, after the flow returns), and the runs it recorded."""
    started = time.perf_counter()
    state = many_tasks.with_options(task_runner=runner)(count, return_state=True)
    if not state.is_completed():
        raise RuntimeError(f"the flow of no-op tasks failed: {state.message}")
    flow_run = state.state_details.flow_run_id
    drain_prefect_workers()
    deadline = time.monotonic() + 120
    while (recorded := _recorded(flow_run)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return time.perf_counter() - started, recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hours", type=float, default=1000.0)
    args = parser.parse_args()
    quiet_dask_logs()
    rows = []
    with shared_prefect_api():
        timed(ThreadPoolTaskRunner(max_workers=2), 20)  # the API's and the client's warm-up
        seconds, recorded = timed(ThreadPoolTaskRunner(max_workers=2), args.tasks)
        rows.append({"runner": "threads, this process", "task runs": recorded,
                     "seconds": seconds})
        with dask_scheduler(DaskConfig(n_workers=args.workers)) as address:
            runner = DaskTaskRunner(address=address)
            timed(runner, 20)
            seconds, recorded = timed(runner, args.tasks)
        rows.append({"runner": f"LocalCluster, {args.workers} worker processes",
                     "task runs": recorded, "seconds": seconds})
    table = pd.DataFrame(rows)
    table["task runs/s"] = table["task runs"] / table["seconds"]
    table["ms per task run"] = 1000 * table["seconds"] / table["task runs"]
    print(f"\n{args.tasks} no-op tasks per flow, one temporary Prefect API (SQLite)\n")
    print(table.to_markdown(index=False, floatfmt=".1f"))

    chunks = args.hours * 3600 * 30 / CHUNK_FRAMES
    rate = float(table["task runs/s"].min())
    scale = []
    for unit, per_task in (("a chunk (64 frames)", 1), ("a run of 16 chunks", 16)):
        runs = CHUNKED_STAGES * chunks / per_task
        scale.append({"task unit": unit, "task runs": runs,
                      "hours of API time at the slower rate": runs / rate / 3600})
    print(f"\n{args.hours:g} hours of 30 frames/s footage: {chunks:,.0f} chunks of "
          f"{CHUNK_FRAMES} frames, {CHUNKED_STAGES} chunked stages\n")
    print(pd.DataFrame(scale).to_markdown(index=False, floatfmt=",.0f"))
    print(f"\nReproduce: .venv/bin/python bench/task_runs.py --tasks {args.tasks} "
          f"--workers {args.workers} --hours {args.hours:g}")


if __name__ == "__main__":
    main()
