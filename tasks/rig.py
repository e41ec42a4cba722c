"""The rig stage for one registered rig: its 3D (``rig_reconstruct``), skipped when its
labels are current for its members' labels and the config. The export stage writes its
files (``rig_export``)."""

from __future__ import annotations

from prefect import get_run_logger, task

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore

from .retry import retry_transient
from .rig_reconstruct import is_current, reconstruct_rig


def run_rig(store: DatasetStore, name: str, config: HandlabelConfig,
            overwrite: bool = False) -> str:
    """'labelled N hands' or 'up to date'."""
    if not overwrite and is_current(store, name, config):
        return "up to date"
    return f"labelled {reconstruct_rig(store, name, config)} hands"


@task(name="rig", task_run_name="rig {name}", retries=1, retry_delay_seconds=1,
      retry_condition_fn=retry_transient)
def rig_task(store_url: str, name: str, config: HandlabelConfig, overwrite: bool = False) -> str:
    outcome = run_rig(DatasetStore(store_url), name, config, overwrite)
    get_run_logger().info("rig %s: %s", name, outcome)
    return outcome
