"""Timing shared by the benchmarks."""

from __future__ import annotations

import statistics
import time


def median_seconds(function, repeats: int, warmup: bool = False) -> float:
    """Median wall time of ``repeats`` calls (after one untimed call if ``warmup``)."""
    if warmup:
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
