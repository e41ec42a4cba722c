"""Run a handlabel job on Dask workers started as SLURM jobs (dask-jobqueue).

    python deploy/slurm/run_on_slurm.py --jobs 8 SOURCES... --store s3://bucket/store \\
        [--jobqueue deploy/slurm/jobqueue.yaml] [--config my.yaml]

Run it on a login node (or in a job of its own): it starts the Dask scheduler here, asks
SLURM for ``--jobs`` worker jobs as ``jobqueue.yaml`` describes them, runs ``handlabel run``
against that scheduler, and cancels the jobs when the run ends, however it ends. The store
must be reachable from every node (a shared filesystem or an object store). Needs the
``cluster`` extra: ``pip install -e ".[cluster]"``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import dask.config
import yaml

HERE = Path(__file__).resolve().parent


def slurm_cluster(jobqueue: Path):
    """A ``SLURMCluster`` configured from ``jobqueue`` (dask-jobqueue's keys)."""
    from dask_jobqueue import SLURMCluster

    with open(jobqueue) as handle:
        dask.config.update(dask.config.config, yaml.safe_load(handle), priority="new")
    return SLURMCluster()


def run_command(address: str, sources: list[str], store: str, config: str | None) -> list[str]:
    """The ``handlabel run`` command line against the scheduler at ``address``."""
    command = ["handlabel", "run", *sources, "--store", store, "--dask-address", address]
    return command + (["--config", config] if config else [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--store", required=True)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--jobqueue", type=Path, default=HERE / "jobqueue.yaml")
    parser.add_argument("--config")
    args = parser.parse_args()
    with slurm_cluster(args.jobqueue) as cluster:
        cluster.scale(jobs=args.jobs)
        print(f"scheduler {cluster.scheduler_address}; {args.jobs} worker jobs asked for",
              flush=True)
        return subprocess.call(run_command(cluster.scheduler_address, args.sources,
                                           args.store, args.config))


if __name__ == "__main__":
    sys.exit(main())
