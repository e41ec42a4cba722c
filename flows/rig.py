"""The rig stage: every registered rig whose cameras' videos are all reconstructed is
triangulated and fitted over all its views, one task per rig (on a GPU worker where the
cluster has one); the export stage writes its files."""

from __future__ import annotations

from prefect import flow
from prefect.states import Completed, Failed

from handlabel.config import HandlabelConfig
from handlabel.storage.fs import configure_filesystems
from handlabel.storage.run_lock import store_run
from handlabel.storage.store import DatasetStore
from handlabel.tasks.rig import rig_task

from .artifacts import PUBLISHING
from .runner import dask_task_runner, gpu_annotation


@flow(name="rig", task_runner=dask_task_runner(), **PUBLISHING)
def rig_flow(store: str, config: HandlabelConfig | None = None, overwrite: bool = False):
    """Label every rig of ``store`` whose members' labels are done."""
    config = config or HandlabelConfig()
    configure_filesystems(config.storage.options)
    dataset = DatasetStore(store, create=False)
    names = dataset.rig_names()
    if not names:
        return Completed(message="no rigs")
    done = set(dataset.videos_done("reconstruct"))
    waiting = {n: sorted(set(dataset.rig(n).attrs["members"].values()) - done) for n in names}
    with store_run(dataset.url, "handlabel rig"):
        with gpu_annotation(config.dask):
            futures = {n: rig_task.submit(dataset.url, n, config, overwrite)
                       for n in names if not waiting[n]}
        states = {n: f.wait() or f.state for n, f in futures.items()}
    problems = [f"{n}: members not reconstructed ({', '.join(v)})"
                for n, v in waiting.items() if v]
    problems += [f"{n}: {s.message}" for n, s in states.items() if s.is_failed()]
    if problems:
        return Failed(message="; ".join(problems))
    outcomes = ", ".join(f"{n} {futures[n].result()}" for n in futures)
    return Completed(message=f"rigs: {outcomes}")
