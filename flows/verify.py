"""``handlabel verify``: every chunk of a store checked in parallel, with progress: on the
configured Dask scheduler when there is one, else on threads of this process (the checks
are object reads and CRC sums, which release the GIL)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

from rich.progress import Progress

from handlabel.storage.verify import ArrayJob, check_array

THREADS = 8


def parallel_checks(store_url: str, address: str | None, progress: Progress,
                    storage_options: dict | None = None) -> Callable[[list[ArrayJob]], list]:
    """A ``run_jobs`` for :func:`~handlabel.storage.verify.verify_store` that shows progress
    in chunk objects; workers reach the store with ``storage_options``."""

    def run(jobs: list[ArrayJob]) -> list:
        bar = progress.add_task("verify", total=sum(len(j.keys) + len(j.required)
                                                    for j in jobs))

        def advance(job: ArrayJob) -> None:
            progress.advance(bar, len(job.keys) + len(job.required))

        if address:
            return _on_dask(store_url, address, jobs, advance, storage_options)
        with ThreadPoolExecutor(THREADS, thread_name_prefix="verify") as pool:
            futures = {pool.submit(check_array, store_url, job): job for job in jobs}
            results = []
            for future in as_completed(futures):
                results.append(future.result())
                advance(futures[future])
            return results

    return run


def _on_dask(store_url: str, address: str, jobs: list[ArrayJob], advance,
             storage_options: dict | None) -> list:
    from distributed import Client
    from distributed import as_completed as dask_completed

    with Client(address) as client:
        futures = client.map(check_array, [store_url] * len(jobs), jobs,
                             [storage_options] * len(jobs), pure=False)
        owner = dict(zip((f.key for f in futures), jobs, strict=True))
        results = []
        for future in dask_completed(futures):
            results.append(future.result())
            advance(owner[future.key])
        return results
