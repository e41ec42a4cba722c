"""What each form of ``handlabel rerun`` redoes, decided from a store's manifest: a store with
a done video, a failed detect, a failed ingest, an interrupted reconstruct and a video that
never started."""

from __future__ import annotations

import pytest

from handlabel.flows.rerun import plan_rerun
from handlabel.storage.manifest import STAGES, Manifest
from handlabel.storage.store import DatasetStore

DONE = dict.fromkeys(STAGES, "done")


@pytest.fixture
def table(tmp_path):
    store = str(tmp_path / "store")
    DatasetStore(store)
    manifest = Manifest(store)
    rows = {
        "done": DONE,
        "detect_failed": {"ingest": "done", "detect": "failed"},
        "ingest_failed": {"ingest": "failed"},
        "cut_short": {**DONE, "reconstruct": "running", "export": "pending"},
        "new": {},
    }
    for video_id, states in rows.items():
        manifest.upsert(video_id, name=f"{video_id}.mp4", source_uri=f"/in/{video_id}.mp4",
                        **{f"{s}_state": v for s, v in states.items()})
    return manifest.table()  # no run holds the store: "running" reads as interrupted


def test_plain_rerun_finishes_everything_not_done(table):
    plan = plan_rerun(table)
    assert plan.first_stage == "ingest" and plan.videos is None and plan.overwrite_stage is None
    assert plan.sources == ["/in/ingest_failed.mp4", "/in/new.mp4"]


def test_failed_only_takes_failed_and_interrupted_videos_from_their_first_failed_stage(table):
    plan = plan_rerun(table, failed_only=True)
    assert plan.first_stage == "ingest" and plan.overwrite_stage is None
    assert sorted(plan.videos) == ["cut_short", "detect_failed", "ingest_failed"]
    assert plan.sources == ["/in/ingest_failed.mp4"], "a video that never ran is left alone"


@pytest.mark.parametrize(("stage", "videos"), [
    ("detect", ["detect_failed"]), ("reconstruct", ["cut_short"]), ("ingest", ["ingest_failed"]),
])
def test_failed_only_in_one_stage_takes_that_stage_s_failures_only(table, stage, videos):
    plan = plan_rerun(table, stage, failed_only=True)
    assert plan.first_stage == stage and plan.videos == videos and plan.overwrite_stage is None
    assert plan.sources == (["/in/ingest_failed.mp4"] if stage == "ingest" else [])


def test_failed_only_where_nothing_failed_does_nothing(table):
    plan = plan_rerun(table, "weight", failed_only=True)
    assert plan.first_stage is None and "nothing failed" in plan.summary
    done = table[table["video_id"] == "done"]
    assert plan_rerun(done, failed_only=True).first_stage is None


def test_a_stage_redoes_that_stage_for_every_video(table):
    plan = plan_rerun(table, "export")
    assert (plan.first_stage, plan.overwrite_stage, plan.videos, plan.sources) == (
        "export", "export", None, [])
    assert len(plan_rerun(table, "ingest").sources) == 5, "re-decoding reads every source"


def test_with_every_video_ingested_nothing_is_read_again(table):
    ingested = table[table["ingest_state"] == "done"]
    plan = plan_rerun(ingested)
    assert plan.first_stage == "detect" and plan.sources == []
