"""The tests' pipeline runs: a small config, the main flow in this process (so that a test
can make a task fail), and the store readings the pipeline tests share."""

from __future__ import annotations

import pandas as pd
from prefect.task_runners import ThreadPoolTaskRunner

from handlabel.config import (
    ExportConfig,
    FitConfig,
    HandlabelConfig,
    IngestConfig,
    ReconstructConfig,
    SelfCheckConfig,
    TrainConfig,
)
from handlabel.storage.store import DatasetStore

from .conftest import GESTURE_AVI

CONFIG = HandlabelConfig(
    ingest=IngestConfig(chunk_frames=8),
    train=TrainConfig(epochs=2, encoder_width=4, input_size=64, render_size=32),
    # a fifth of the fit's steps: the same code in a quarter of the time (its accuracy is
    # measured in bench/accuracy.py, not here)
    # spans of 3 frames with 3 either side: the 20-frame clip holds two
    reconstruct=ReconstructConfig(fit=FitConfig(steps=40), selfcheck=SelfCheckConfig(
        spans=2, span_s=0.1, context_s=0.1)),
    export=ExportConfig(report_samples=2))

STAGES = ("ingest", "detect", "weight", "train", "reconstruct", "export")


def run(sources, store, config=CONFIG, **options):
    from handlabel.flows.pipeline import run_pipeline, stages_on

    with stages_on(ThreadPoolTaskRunner(max_workers=1)):
        return run_pipeline([str(s) for s in sources], str(store), config, **options)


# Labels of one store made twice agree to this relative tolerance (with 1e-4 absolute): the
# sequence fit sums over a batch of tracks, and torch splits those sums by its thread count,
# which differs between a Dask worker (1 thread) and a small job's own process (all cores);
# measured 1e-4 px apart on the gesture clip's 2D labels, bit-identical at one thread count.
# (The tests' processes run one torch thread, tests/conftest.py; the tolerance stays so that
# the comparisons hold for a developer who runs them with more.)
FLOAT_ROUNDING = 1e-5


def export_here(store: DatasetStore, config=CONFIG, **options):
    """The export flow alone, its tasks in this process (no Dask cluster to start)."""
    from handlabel.flows.export import export_flow

    return export_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=1))(
        store.url, config, return_state=True, **options)


def exported(store: DatasetStore, name: str) -> str:
    return f"{store.url}/export/{name}"


def rerun(store, stage=None, failed_only=False):
    """What ``handlabel rerun STORE [--stage S] [--failed-only]`` runs, in this process."""
    from handlabel.flows.rerun import plan_rerun

    plan = plan_rerun(DatasetStore(str(store)).manifest.table(), stage, failed_only)
    if plan.first_stage is None:
        return None
    return run(plan.sources, store, first_stage=plan.first_stage,
               overwrite_stage=plan.overwrite_stage, videos=plan.videos)


def finished(store) -> pd.DataFrame:
    table = DatasetStore(str(store)).manifest.table().set_index("name")
    return table[[f"{s}_finished" for s in STAGES]]


def completed(store: DatasetStore) -> DatasetStore:
    """The module's store with every stage done again (earlier tests leave it changed or
    failed on purpose); a no-op run when it is."""
    state = run([GESTURE_AVI], store.url)
    assert state.is_completed(), state.message
    return store


def assert_parameters_give_joints(hands: pd.DataFrame) -> None:
    """Every hand's parameters in a ``hands.parquet`` table, its track's skeleton included,
    pose the hand model onto its exported joints (left hands in the left-hand convention: the
    mirrored parameters of the right-hand model, mirrored back)."""
    import numpy as np
    import torch

    from handlabel.models.hand.default import DefaultHandModel
    from handlabel.models.hand.sides import MIRROR, MIRROR_ROTVEC
    from handlabel.models.network.s2hand import place_hand

    assert np.isfinite(np.stack(hands["skeleton"])).all()
    model = DefaultHandModel()
    for side, part in hands.groupby("side"):
        flip, rot_flip = (MIRROR, MIRROR_ROTVEC) if side == "left" else (1.0, 1.0)

        def column(name, shape, factor=1.0, part=part):
            values = np.stack(part[name]).reshape(len(part), *shape) * factor
            return torch.as_tensor(values, dtype=torch.float32)

        with torch.no_grad():
            _, joints = place_hand(model, column("global_orient", (3,), rot_flip),
                                   column("hand_pose", (15, 3), rot_flip),
                                   column("betas", (model.n_shape,)),
                                   column("translation", (3,), flip),
                                   torch.as_tensor(part["scale"].to_numpy(), dtype=torch.float32),
                                   column("skeleton", (len(model.parents), 3)))
        np.testing.assert_allclose(joints.numpy() * flip, column("joints_3d", (21, 3)).numpy(),
                                   atol=2e-5)
