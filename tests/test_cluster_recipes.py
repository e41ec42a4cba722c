"""The cluster recipes of deploy/ (docs/cluster.md): SLURM through dask-jobqueue, tested on
loopback by running the worker command its job script holds, as a SLURM node would; the
Kubernetes manifests checked against each other and against handlabel's own settings (no
Kubernetes API server runs here, so they are not applied: that check is left to
``kubectl apply --dry-run=server`` on a real cluster)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from distributed import Client

from handlabel.config import DaskConfig

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
sys.path.insert(0, str(DEPLOY / "slurm"))

import run_on_slurm  # noqa: E402


@pytest.fixture
def slurm_cluster(tmp_path, monkeypatch):
    """The recipe's cluster, its relative log directory under the test's folder and its dask
    config undone afterwards."""
    import copy

    import dask

    pytest.importorskip("dask_jobqueue")
    monkeypatch.chdir(tmp_path)
    saved = copy.deepcopy(dask.config.config)
    cluster = run_on_slurm.slurm_cluster(DEPLOY / "slurm" / "jobqueue.yaml")
    try:
        yield cluster
    finally:
        cluster.close()
        dask.config.config.clear()
        dask.config.config.update(saved)


def test_a_slurm_jobs_worker_joins_with_the_gpu_resource_handlabel_asks_for(
        slurm_cluster, tmp_path):
    """The job script asks SLURM for a GPU and the cores, and its worker command, run here
    as the node would run it, joins the scheduler with the resource that handlabel's train
    and reconstruct tasks ask for, and the job's threads and memory."""
    script = slurm_cluster.job_script()
    assert "#SBATCH --gres=gpu:1" in script and "#SBATCH --cpus-per-task=8" in script
    assert "source /shared/handlabel/.venv/bin/activate" in script
    command = shlex.split(script.strip().splitlines()[-1])
    assert command[:3] == ["python", "-m", "distributed.cli.dask_worker"]
    assert command[3] == slurm_cluster.scheduler_address
    command[0] = sys.executable  # the node's activated .venv
    command[command.index("--local-directory") + 1] = str(tmp_path)
    worker = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Client(slurm_cluster.scheduler_address, timeout=30) as client:
            deadline = time.monotonic() + 60
            while not client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.5)
            (info,) = client.scheduler_info()["workers"].values()
            assert info["resources"] == {DaskConfig().gpu_resource: 1}
            # the job's 32 GiB, or this machine's memory where it has less (Dask's cap)
            assert info["nthreads"] == 8
            assert info["memory_limit"] == min(32 * 2**30, psutil.virtual_memory().total)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_the_slurm_launcher_runs_handlabel_against_its_scheduler():
    assert run_on_slurm.run_command("tcp://10.0.0.1:8786", ["/data/a", "/data/b"], "s3://x/s",
                                    "my.yaml") == [
        "handlabel", "run", "/data/a", "/data/b", "--store", "s3://x/s", "--dask-address",
        "tcp://10.0.0.1:8786", "--config", "my.yaml"]


def test_the_kubernetes_run_reaches_the_operators_scheduler_service_and_gpu_workers():
    cluster = yaml.safe_load((DEPLOY / "kubernetes" / "dask-cluster.yaml").read_text())
    job = yaml.safe_load((DEPLOY / "kubernetes" / "handlabel-job.yaml").read_text())
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1" and cluster["kind"] == "DaskCluster"
    name = cluster["metadata"]["name"]
    port = next(p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"]
                if p["name"] == "tcp-comm")
    (run,) = job["spec"]["template"]["spec"]["containers"]
    command = run["command"]
    assert command[:2] == ["handlabel", "run"]
    # the Dask operator names the scheduler's service <cluster>-scheduler
    assert command[command.index("--dask-address") + 1] == f"tcp://{name}-scheduler:{port}"
    (worker,) = cluster["spec"]["worker"]["spec"]["containers"]
    args = worker["args"]
    assert args[args.index("--resources") + 1] == f"{DaskConfig().gpu_resource}=1"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert args[args.index("--nthreads") + 1] == worker["resources"]["limits"]["cpu"]
    images = {worker["image"], run["image"],
              cluster["spec"]["scheduler"]["spec"]["containers"][0]["image"]}
    assert len(images) == 1, "the run, scheduler and workers share one image"
    assert job["spec"]["backoffLimit"] == 0  # handlabel rerun resumes; no blind pod retry
