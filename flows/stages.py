"""The stage registry: every stage of the pipeline declared once, in run order.

A stage says what it works on (its units), which videos it takes (those done with the stage
before it), where its flow is, how to ask whether a unit is current with a config (without a
server), where its chunk records are (live progress) and how it is offered to users (CLI
command, Prefect deployment). The main flow, the rerun planner and its pending work
(``flows/rerun.py``), the progress display, the CLI's stage commands, ``status`` and
``prefect.yaml``'s deployments all loop over ``STAGES``: adding a stage is one module and
one line here (docs/architecture.md, "Adding a stage").

Flows and currency tests are named by entrypoint (``module:attribute``, as Prefect names a
deployment's flow) and imported when first used, so that reading the registry (``status``,
``--help``) imports neither Prefect nor torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from handlabel.config import HandlabelConfig

Units = Literal["sources", "videos", "chunks", "model", "rigs"]


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    Attributes:
        name: the stage's name: its CLI command, its manifest columns (``<name>_state``...),
            its config section where it has one.
        summary: one line for ``handlabel <name> --help`` and its Prefect deployment.
        units: what one unit of its work is: ``videos`` (one task per video), ``chunks``
            (chunk tasks, then the video's own step), ``model`` (one unit per store),
            ``rigs`` (one per calibrated rig), ``sources`` (ingest: files to read).
        takes: the stage whose done videos it takes (None: ingest, from its sources).
        flow: the entrypoint of its Prefect flow, ``module:attribute``.
        current: the entrypoint of its currency test, ``(store, unit, config) -> bool`` with
            the whole ``HandlabelConfig`` (None: ingest, decided while it reads a source).
        records: the stage-array group whose chunk records count its progress (chunked
            stages; ``""`` for ingest, whose records are the frames' own).
        in_manifest: whether each video's manifest row records this stage's state.
        store_unit: a unit over the whole store it also writes, after its videos (export's
            dataset files).
        step: the stage-array group whose step progress counts the video's own step
            (reconstruct's sequence fit), shown as a line of its own.
        progress: for a stage outside the manifest, the entrypoint of its live progress,
            ``(store, config) -> (done, total, unit, note) | None`` (None: not running).
    """

    name: str
    summary: str
    units: Units
    takes: str | None
    flow: str
    current: str | None = None
    records: str | None = None
    in_manifest: bool = True
    store_unit: str | None = None
    step: str | None = None
    progress: str | None = None

    @property
    def per_video(self) -> bool:
        """Whether its units are videos (a rerun can limit it to some videos)."""
        return self.units in ("videos", "chunks")

    def load_flow(self):
        return _load(self.flow)

    def read_progress(self, store, config) -> tuple[int, int, str, str] | None:
        """(done, total, unit, note) of a stage outside the manifest while it runs."""
        return _load(self.progress)(store, config) if self.progress else None

    def is_current(self, store, unit: str, config) -> bool:
        """Whether ``unit`` (a video id, ``model`` or a rig's name) is done with ``config``."""
        return bool(_load(self.current)(store, unit, config))


def _load(entrypoint: str):
    module, _, attribute = entrypoint.partition(":")
    return getattr(importlib.import_module(module), attribute)


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "Decode videos into the store's Zarr frame chunks.", "sources", None,
          "handlabel.flows.ingest:ingest_flow", records=""),
    Stage("detect", "Hands, keypoints, confidences and crops for every ingested video.",
          "chunks", "ingest", "handlabel.flows.detect:detect_flow",
          "handlabel.tasks.detect:is_current", records="detect"),
    Stage("weight", "Supervision weights for every detected video.", "videos", "detect",
          "handlabel.flows.weight:weight_flow", "handlabel.tasks.weight:is_current"),
    Stage("train", "Train the S2HAND network on the store's weighted hand crops (resumes an "
          "interrupted training from its last checkpoint).", "model", "weight",
          "handlabel.flows.train:train_flow", "handlabel.tasks.train:is_current"),
    Stage("reconstruct", "3D hands for every weighted video with the store's trained model: "
          "the network chunk by chunk, then each video's sequence fit.", "chunks", "weight",
          "handlabel.flows.reconstruct:reconstruct_flow",
          "handlabel.tasks.reconstruct:is_current", records="network", step="reconstruct"),
    Stage("rounds", "Rounds of fit and training (train.rounds): the network retrains on the "
          "labels, every video is labelled again, kept while the self-check improves.",
          "model", "reconstruct", "handlabel.flows.rounds:rounds_flow",
          "handlabel.tasks.rounds:is_current", in_manifest=False,
          progress="handlabel.tasks.rounds:progress"),
    Stage("rig", "Triangulate, fit and export every calibrated rig whose cameras' videos are "
          "reconstructed (rigs are recorded at ingest, from rig.rigs).", "rigs", "reconstruct",
          "handlabel.flows.rig:rig_flow", "handlabel.tasks.rig_reconstruct:rig_is_current",
          in_manifest=False),
    Stage("export", "Write the dataset files, overlay videos and the report under "
          "STORE/export/.", "chunks", "reconstruct", "handlabel.flows.export:export_flow",
          "handlabel.tasks.export_video:is_current", store_unit="dataset files"),
)

BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
MANIFEST_STAGES: tuple[str, ...] = tuple(s.name for s in STAGES if s.in_manifest)


def load_stage_flows(config: HandlabelConfig | None = None) -> None:
    """Import every stage's flow and ``config``'s detector (torch, the models, MediaPipe:
    seconds of imports that a run otherwise pays as each stage begins)."""
    for each in STAGES:
        each.load_flow()
    if config is not None:
        from handlabel.tasks.detect import load_backend

        load_backend(config.detect)


def stage(name: str) -> Stage:
    """The stage called ``name``; a clear error naming the stages there are."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"no stage {name!r}; the stages are {', '.join(NAMES)}") from None


def stages_from(first: str) -> tuple[Stage, ...]:
    """``first`` and the stages after it, in run order."""
    return STAGES[NAMES.index(stage(first).name):]
