"""What ``handlabel rerun`` redoes, decided from the manifest alone, before any server starts.

- ``rerun``: finish everything not done (failed, interrupted, never run, stale); the stages
  skip what is up to date.
- ``rerun --stage S``: redo stage S for every video; the later stages redo what depends on it.
- ``rerun --failed-only``: only the videos with a failed or interrupted stage, from the first
  such stage on; within a chunked stage only the chunks not done. Work that never ran and
  the other videos are left alone, unless a retrain (the training set grew by a video that
  now gets through) makes every video's labels stale: then reconstruct and export follow.
- ``rerun --stage S --failed-only``: only the videos whose stage S failed or was
  interrupted, from S on.

What a plain rerun has to do is asked of the store alone (``pending_work``: each stage's
units not current with the config), so a rerun with nothing pending answers at once and one
with work starts from the first stage that has some.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from handlabel.config import HandlabelConfig
from handlabel.storage.manifest import NOT_DONE_AFTER_RUN
from handlabel.storage.store import DatasetStore

from .stages import MANIFEST_STAGES, STAGES, Stage, stages_from

_REDO_STATES = [state.value for state in NOT_DONE_AFTER_RUN]


@dataclass(frozen=True)
class RerunPlan:
    first_stage: str | None  # None: nothing to redo
    sources: list[str] = field(default_factory=list)  # recorded sources ingest reads again
    videos: list[str] | None = None  # the per-video stages touch only these (None: all)
    overwrite_stage: str | None = None
    summary: str = ""


def plan_rerun(table: pd.DataFrame, stage: str | None = None,
               failed_only: bool = False) -> RerunPlan:
    """The rerun of a store whose manifest is ``table`` (see the module docstring);
    superseded videos (their sources hold other content now) are never redone."""
    table = table[table["superseded_by"].isna()]
    if failed_only:
        return _failed_only(table, stage)
    if stage is not None:
        sources = _sources(table, table.index == table.index) if stage == "ingest" else []
        return RerunPlan(stage, sources, None, stage, f"redo {stage} for every video")
    not_ingested = table["ingest_state"].fillna("pending") != "done"
    sources = _sources(table, not_ingested)
    first = "ingest" if sources else "detect"
    return RerunPlan(first, sources, None, None, "finish whatever is not done")


def _failed_only(table: pd.DataFrame, stage: str | None) -> RerunPlan:
    stages = [stage] if stage else list(MANIFEST_STAGES)
    failed = pd.DataFrame({s: table[f"{s}_state"].isin(_REDO_STATES) for s in stages})
    rows = failed.any(axis=1)
    if not rows.any():
        where = f"in {stage}" if stage else "in any stage"
        return RerunPlan(None, summary=f"nothing failed or was interrupted {where}")
    first = next(s for s in stages if failed[s].any())
    videos = table.loc[rows, "video_id"].tolist()
    sources = _sources(table, failed[first]) if first == "ingest" else []
    return RerunPlan(first, sources, videos, None,
                     f"redo the failed units of {len(videos)} videos from {first} on")


def _sources(table: pd.DataFrame, wanted: pd.Series) -> list[str]:
    """The recorded sources of the wanted rows, each once; a source whose content is also
    stored under a row that is not wanted is not needed (a copy of a done video)."""
    done_sources = set(table.loc[~wanted, "source_uri"].dropna())
    needed = table.loc[wanted, "source_uri"].dropna()
    return list(dict.fromkeys(u for u in needed if u not in done_sources))


def pending_work(store: DatasetStore, config: HandlabelConfig) -> dict[str, list[str]]:
    """{stage: the units it would redo} for the stages after ingest, in stage order; only
    stages with work appear. A unit is a video id, ``model`` (train), a rig's name, or a
    stage's store-wide unit (export's ``dataset files``). A stage is asked only about the
    units it would take (videos done upstream), as its flow does."""
    pending = {}
    for stage in STAGES:
        if stage.current is None:
            continue
        units = [u for u in candidate_units(store, stage)
                 if not stage.is_current(store, u, config)]
        if stage.store_unit and not stage.is_current(store, stage.store_unit, config):
            units.append(stage.store_unit)
        if units:
            pending[stage.name] = units
    return pending


def candidate_units(store: DatasetStore, stage: Stage) -> list[str]:
    """The units ``stage`` would take now: its rigs, its model (once a video is ready for
    it), or the videos done with the stage it takes from."""
    if stage.units == "rigs":
        return store.rig_names()
    ready = store.videos_done(stage.takes)
    if stage.units == "model":
        return ["model"] if ready else []
    return ready


def first_pending(pending: dict[str, list[str]], first: str) -> str | None:
    """The first stage from ``first`` on with pending units (None: all current)."""
    return next((s.name for s in stages_from(first) if s.name in pending), None)
