"""The rounds flow: rounds of fit and training over the whole store (``tasks/rounds.py``):
round 0 kept, then per round the network retrained on the labels, every video labelled
again, the labels kept while the self-check says a round helped."""

from __future__ import annotations

import time
from dataclasses import replace

from prefect import flow, get_run_logger
from prefect.futures import wait
from prefect.states import Completed, Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.rounds import (
    RUNNING,
    RoundCheck,
    accept_round_task,
    forget_models_beyond,
    is_current,
    label_round_task,
    mark_failed,
    pooled_check,
    round_helped,
    rounds_key,
    start_rounds_task,
    train_round_task,
    write_record,
)

from .artifacts import PUBLISHING
from .runner import dask_task_runner, gpu_annotation


@flow(name="rounds", task_runner=dask_task_runner(), **PUBLISHING)
def rounds_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False):
    """``train.rounds.count`` rounds over every reconstructed video, stopping at the first
    that does not lower the self-check by ``min_gain``; skipped when done with the same
    config and round-0 labels."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    videos = dataset.videos_done("reconstruct")
    if not videos:
        return Failed(message="rounds: no reconstructed videos; run reconstruct first")
    if not overwrite and is_current(dataset, "model", config):
        return Completed(message="rounds: current" if config.train.rounds.count
                         else "rounds: none asked for (train.rounds.count 0)")
    with store_run(dataset.url, "handlabel rounds"), gpu_annotation(config.dask):
        try:
            checks, stopped = _rounds(dataset, videos, config)
        except Exception as exc:  # a task's failure: its message, the record left incomplete
            mark_failed(dataset, str(exc))
            return Failed(message=f"rounds failed: {exc}")
    write_record(dataset, rounds_key(dataset, videos, config), checks, True, stopped)
    kept = max(c.round for c in checks if c.kept)
    return Completed(message=f"labels from round {kept} of {len(checks) - 1}: {stopped}")


def _rounds(dataset: DatasetStore, videos: list[str], config: HandlabelConfig
            ) -> tuple[list[RoundCheck], str]:
    log, url, settings = get_run_logger(), dataset.url, config.train.rounds
    key = rounds_key(dataset, videos, config)
    forget_models_beyond(dataset, settings.count)
    best = pooled_check(0, _results([start_rounds_task.submit(url, v, settings.count)
                                     for v in videos]))
    checks = [replace(best, kept=True)]
    write_record(dataset, key, checks, False, RUNNING)
    log.info("rounds: round 0's self-check %s over %d hidden frames", _px(best), best.frames)
    for k in range(1, settings.count + 1):
        began = time.monotonic()
        train_round_task.submit(url, videos, k, config).result()
        check = pooled_check(k, _results([label_round_task.submit(url, v, k, config)
                                          for v in videos]))
        helped = round_helped(best, check, settings.min_gain)
        checks.append(replace(check, kept=helped, seconds=time.monotonic() - began))
        log.info("rounds: round %d's self-check %s (round %d's %s): %s", k, _px(check),
                 best.round, _px(best), "kept" if helped else "not kept")
        if not helped:
            return checks, (f"round {k} did not lower the self-check by "
                            f"{settings.min_gain:.0%}")
        _results([accept_round_task.submit(url, v, k) for v in videos])
        best = check
        write_record(dataset, key, checks, False, RUNNING)
    if not settings.count:
        return checks, "no rounds asked for (train.rounds.count 0): round 0's labels"
    return checks, f"{settings.count} rounds asked for, each kept"


def _px(check: RoundCheck) -> str:
    return "not measured" if check.labels_px is None else f"{check.labels_px:.2f} px"


def _results(futures: list) -> list:
    """Every future's result once all are done (the first failure raised)."""
    wait(futures)
    return [future.result() for future in futures]
