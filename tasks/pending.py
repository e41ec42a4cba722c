"""What a plain rerun would do, asked of the store alone (no Prefect API, no Dask cluster):
each stage's units that are not current with the config. A rerun with nothing pending
answers at once; one with work starts from the first stage that has some."""

from __future__ import annotations

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore

from .detect import detect_is_current
from .export import dataset_files_current
from .export_video import export_is_current
from .reconstruct import reconstruct_is_current
from .rig_reconstruct import is_current as rig_is_current
from .train import train_is_current
from .weight import weight_is_current

DATASET_FILES = "dataset files"


def pending_work(store: DatasetStore, config: HandlabelConfig) -> dict[str, list[str]]:
    """{stage: the units it would redo} for the stages after ingest, in stage order; only
    stages with work appear. A unit is a video id, ``model`` (train), a rig's name, or
    ``dataset files`` (export's files over the whole store). A stage is asked only about
    the videos it would take (those done upstream), as its flow does."""
    table = store.manifest.table()
    current = table[table["superseded_by"].isna()]

    def done(stage: str) -> list[str]:
        return current.loc[current[f"{stage}_state"] == "done", "video_id"].tolist()

    pending = {
        "detect": [v for v in done("ingest") if not detect_is_current(store, v, config.detect)],
        "weight": [v for v in done("detect") if not weight_is_current(store, v, config.weight)],
        "train": ["model"] if done("weight") and not train_is_current(
            store, done("weight"), config.train) else [],
        "reconstruct": [v for v in done("weight")
                        if not reconstruct_is_current(store, v, config.reconstruct)],
        "rig": [name for name in store.rig_names() if not _rig_current(store, name, config)],
        "export": [v for v in done("reconstruct")
                   if not export_is_current(store, v, config.export)],
    }
    exported = [v for v in done("reconstruct") if v in set(done("export"))]
    if exported and not dataset_files_current(store, exported, config.export):
        pending["export"].append(DATASET_FILES)
    return {stage: units for stage, units in pending.items() if units}


def _rig_current(store: DatasetStore, name: str, config: HandlabelConfig) -> bool:
    """A rig whose members are not all reconstructed counts as pending: the rig flow reports
    it as failed, and a rerun must say so rather than answer that nothing is to do."""
    try:
        return bool(rig_is_current(store, name, config))
    except (KeyError, ValueError, RuntimeError):
        return False
