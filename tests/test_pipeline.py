"""A complete run of every stage on a real clip (the session's gesture store): exports
readable by standard tools, the parameters that give back the joints, the self-check, the
run page's artifacts, the Rerun recording and the report in a browser."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from handlabel.config import ExportConfig
from handlabel.storage.store import DatasetStore

from .browser import CHROMIUM, inspect_page
from .conftest import GESTURE_AVI
from .pipeline_runs import (
    CONFIG,
    FLOAT_ROUNDING,
    STAGES,
    assert_parameters_give_joints,
    completed,
    export_here,
    exported,
)


def test_exports_read_back_with_standard_tools(complete_store):
    from pycocotools.coco import COCO

    store = complete_store
    row = store.manifest.table().iloc[0]
    assert all(row[f"{s}_state"] == "done" for s in STAGES)
    hands = pd.read_parquet(exported(store, "hands.parquet"))
    present = store.stage(row["video_id"], "detect").read("present")
    detected = hands[~hands["interpolated"]]
    assert len(detected) == present.sum() > 0
    # filled frames lie inside tracks: never more of them than the frames without a detection
    assert hands["interpolated"].sum() <= (~present).sum()
    first = hands.iloc[0]
    assert len(first["keypoints_2d"]) == 42 and len(first["joints_3d"]) == 63
    assert (hands["quality"].between(0, 1)).all()
    assert np.isfinite(np.stack(hands["joints_3d"])).all()

    coco = COCO(exported(store, "coco_wholebody_hands.json"))
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len(coco.getImgIds()) == len(annotations) == detected["frame"].nunique()
    image = coco.loadImgs(annotations[0]["image_id"])[0]
    assert (store.url + "/export/" + image["file_name"]).endswith(".jpg")
    side = "right" if annotations[0]["righthand_valid"] else "left"
    match = hands[(hands["frame"] == image["frame_index"]) & (hands["side"] == side)].iloc[0]
    kpts = np.asarray(annotations[0][f"{side}hand_kpts"]).reshape(21, 3)
    np.testing.assert_allclose(kpts[:, :2], np.asarray(match["keypoints_2d"]).reshape(21, 2),
                               atol=1e-3)
    # COCO's v is the labels' visibility estimate: 2 seen, 1 labelled but not seen
    np.testing.assert_array_equal(kpts[:, 2], np.where(match["visible"], 2, 1))
    visible = np.stack(hands["visible"])
    assert visible.shape == (len(hands), 21) and not visible[hands["interpolated"]].any()
    assert visible.any() and (hands["track"] >= 0).all()

    freihand = {name: json.loads(Path(exported(store, f"freihand/{name}.json")).read_text())
                for name in ("K", "xyz", "verts", "mano", "index")}
    assert len({len(v) for v in freihand.values()}) == 1
    assert np.asarray(freihand["xyz"][0]).shape == (21, 3)
    assert np.asarray(freihand["mano"][0]).shape == (1, 61)

    overlay = exported(store, f"overlays/{GESTURE_AVI.stem}-{row['video_id'][:8]}.mp4")
    with av.open(overlay) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) == row["n_frames"]
        assert abs(float(stream.average_rate) - row["fps"]) < 0.5
    report = Path(exported(store, "report.html")).read_text()
    assert report.count("data:image/png;base64,") >= 3 and "data:image/jpeg" in report


def test_the_self_check_is_measured_beside_the_labels_and_leaves_them_alone(complete_store):
    """Hidden spans are measured where the detector saw the hand (the labels there stay
    detected, not filled), summarised in the manifest and in videos.parquet."""
    store = complete_store
    row = store.manifest.table().iloc[0]
    labels = store.stage(row["video_id"], "reconstruct")
    fitted, straight = labels.read("selfcheck_px"), labels.read("selfcheck_interpolation_px")
    measured = np.isfinite(fitted)
    assert 2 <= measured.sum() <= 6, "two spans of three frames"
    assert np.isfinite(straight[measured]).all() and (fitted[measured] >= 0).all()
    assert labels.read("present")[measured].all()
    assert not labels.read("interpolated")[measured].any()
    both = measured & np.isfinite(straight)
    assert row["reconstruct_selfcheck_frames"] == both.sum()
    assert row["reconstruct_selfcheck_px"] == pytest.approx(float(np.median(fitted[both])))
    assert row["reconstruct_selfcheck_interpolation_px"] == \
        pytest.approx(float(np.median(straight[both])))
    videos = pd.read_parquet(exported(store, "videos.parquet")).iloc[0]
    assert videos["selfcheck_frames"] == both.sum()
    assert videos["selfcheck_px"] == pytest.approx(row["reconstruct_selfcheck_px"])
    assert videos["labels_round"] == 0  # no rounds of fit and training by default


def test_the_gesture_clip_is_one_right_hand_whose_parameters_give_its_joints(complete_store):
    """The detector calls the gesture clip's right hand "left" in 3 of its 20 frames; the
    whole-video identity step (models/identity.py) puts them back, so every label is a right
    hand. Its parameters pose the hand model onto its exported joints (the left-hand
    convention is checked on the mirrored clip: test_pipeline_failures.py)."""
    hands = pd.read_parquet(exported(complete_store, "hands.parquet"))
    assert set(hands["side"]) == {"right"} and len(hands) == 20
    row = complete_store.manifest.table().iloc[0]
    assert row["detect_moved_sides"] > 0  # without the step, those frames are a left hand
    assert_parameters_give_joints(hands)


# COCO-WholeBody's hand keypoint sigmas (mmpose configs/_base_/datasets/coco_wholebody_hand.py)
HAND_SIGMAS = np.array([0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018,
                        0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022,
                        0.031])


def test_coco_file_loads_as_mmpose_reads_hands_and_scores_in_xtcocotools(complete_store):
    """xtcocotools is the COCO reader of mmpose (which does not install here: mmcv); the
    hands are read with the fields and filter of mmpose's CocoWholeBodyHandDataset, then the
    labels are scored against themselves and against a shifted copy by COCO-WholeBody's own
    hand evaluation (OKS with the hand sigmas)."""
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    path = exported(complete_store, "coco_wholebody_hands.json")
    coco = COCO(path)
    hands = pd.read_parquet(exported(complete_store, "hands.parquet"))
    read = []
    for image_id in coco.getImgIds():
        image = coco.loadImgs(image_id)[0]
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False)):
            for side in ("left", "right"):
                if ann[f"{side}hand_valid"] and max(ann[f"{side}hand_kpts"]) > 0:
                    assert len(ann[f"{side}hand_box"]) == 4 and ann["segmentation"] == []
                    read.append((image["frame_index"], side))
    detected = hands[~hands["interpolated"]]
    assert sorted(read) == sorted(zip(detected["frame"], detected["side"], strict=True))

    def average_precision(shift_px: float, side: str) -> float:
        results = []
        for ann in coco.loadAnns(coco.getAnnIds()):
            kpts = np.asarray(ann[f"{side}hand_kpts"], dtype=float).reshape(21, 3)
            kpts[:, :2] += shift_px
            results.append({"image_id": ann["image_id"], "category_id": 1, "score": 1.0,
                            "keypoints": [0.0] * 51, f"{side}hand_kpts": kpts.ravel().tolist()})
        evaluation = COCOeval(coco, coco.loadRes(results), f"keypoints_{side}hand",
                              HAND_SIGMAS, use_area=True)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
        return float(evaluation.stats[0])

    side = detected["side"].value_counts().idxmax()
    assert average_precision(0.0, side) == pytest.approx(1.0)
    assert average_precision(8.0, side) < 0.9


def test_a_run_page_shows_the_status_and_where_the_dataset_is(complete_store):
    """The artifacts a deployment's run page shows: the status table, the dataset files."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    state = export_here(completed(complete_store), overwrite=True)
    assert state.is_completed(), state.message

    async def artifacts():
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
        return {a.key: a.data for a in found}

    published = asyncio.run(artifacts())
    status = json.loads(published["status"]) if isinstance(published["status"], str) \
        else published["status"]
    assert [row["export"] for row in status] == ["done"]
    assert f"{complete_store.url}/export/hands.parquet" in published["dataset"]
    assert "report.html" in published["dataset"]


def test_the_rerun_recording_reads_back_with_every_entity_and_frame(complete_store):
    """``export -f rerun``, read back by Rerun's own reader: the camera, frames, detections,
    labels, meshes and quality of the reconstructed hands, one row per frame."""
    import re

    from rerun.chunk import RrdReader

    config = CONFIG.model_copy(update={"export": ExportConfig(formats=["rerun"],
                                                              report_samples=2)})
    assert export_here(completed(complete_store), config).is_completed()
    row = complete_store.manifest.table().iloc[0]
    path = exported(complete_store, f"rerun/{GESTURE_AVI.stem}-{row['video_id'][:8]}.rrd")
    summary = RrdReader(path).stream().collect().summary()
    rows: dict[tuple[str, str], int] = {}  # (entity, "clear" or "value") -> rows, all chunks
    for entity, count, columns in re.findall(r"^(\S+) rows=(\d+) .*cols=(.*)$", summary,
                                             re.MULTILINE):
        key = (entity, "clear" if "Clear:" in columns else "value")
        rows[key] = rows.get(key, 0) + int(count)
    assert rows[("/world/camera/image", "value")] == row["n_frames"]
    assert rows[("/world/camera", "value")] == 1  # the pinhole, static
    present = complete_store.stage(row["video_id"], "reconstruct").read("present")
    slot = int(present[:, 1].sum() >= present[:, 0].sum())
    side, shown = ("left", "right")[slot], int(present[:, slot].sum())
    for entity in (f"/world/hands/{side}/mesh", f"/world/hands/{side}/skeleton",
                   f"/quality/{side}", f"/world/camera/image/labels/{side}"):
        assert rows[(entity, "value")] == shown, entity
        assert rows.get((entity, "clear"), 0) == row["n_frames"] - shown, entity
    detected = complete_store.stage(row["video_id"], "detect").read("present")[:, slot]
    assert rows[(f"/world/camera/image/detections/{side}", "value")] == detected.sum()


@pytest.mark.skipif(CHROMIUM is None,
                    reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_report_opens_in_a_browser_with_every_image_shown(complete_store):
    """report.html in headless Chromium: no console error, every image decoded, and the
    lowest-quality hands come first, one crop each."""
    report = Path(exported(completed(complete_store), "report.html"))
    errors, images = inspect_page(report.as_uri(), """
        Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0,
            i.closest('figure') ? i.closest('figure').innerText : ''])""")
    assert errors == []
    assert len(images) >= 5 and all(shown for shown, _ in images)
    lowest = [caption for _, caption in images if "quality" in caption]
    hands = pd.read_parquet(exported(complete_store, "hands.parquet"))
    detected = hands[~hands["interpolated"]].set_index("frame")
    shown = [float(c.split("quality ")[1].split(",")[0]) for c in lowest]
    frames = [int(c.split(" frame ")[1].split(" ")[0]) for c in lowest]
    assert 1 <= len(lowest) <= 8 and shown == sorted(shown)
    assert shown[0] == pytest.approx(detected["quality"].min(), abs=1e-3)
    times = detected.groupby(level=0)["time_s"].first().loc[frames].to_numpy()
    assert all(abs(a - b) >= 0.5 - 1e-6 for i, a in enumerate(times) for b in times[i + 1:]), \
        "one crop per bad moment"


def test_a_short_clips_run_works_in_this_process_to_the_same_labels(gesture_store, prefect_api,
                                                                    monkeypatch, tmp_path):
    """``handlabel run`` on a 20-frame clip (under ``dask.in_process_below_frames``) starts
    no Dask cluster, and its store holds the labels the session's cluster gave."""
    import distributed
    import yaml
    from typer.testing import CliRunner

    from handlabel.flows.cli import app

    def no_cluster(*args, **kwargs):
        raise AssertionError("a LocalCluster was started for a 20-frame job")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG.model_dump(mode="json")))
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["run", str(GESTURE_AVI), "--store", str(store),
                                      "--config", str(config)])
    assert result.exit_code == 0, result.output
    table = DatasetStore(str(store)).manifest.table()
    assert (table[[f"{s}_state" for s in STAGES]] == "done").all(axis=None)
    expected = pd.read_parquet(gesture_store / "export" / "hands.parquet")
    got = pd.read_parquet(store / "export" / "hands.parquet")
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected)
    for column in ("keypoints_2d", "joints_3d", "quality"):
        np.testing.assert_allclose(np.stack(got[column]).astype(float),
                                   np.stack(expected[column]).astype(float), atol=1e-4,
                                   rtol=FLOAT_ROUNDING, err_msg=column)


def test_a_long_videos_overlay_shows_every_kth_frame_at_the_sources_speed(complete_store):
    """``export.overlay_max_frames``: a video over the limit gets an overlay of every k-th
    frame (here 20 frames, at most 7: every 3rd, frames 0, 3, ..., 18), played at the
    source's speed; the report's sample frames are among them."""
    config = CONFIG.model_copy(update={"export": ExportConfig(
        formats=["overlay", "report"], overlay_max_frames=7, report_samples=3)})
    assert export_here(completed(complete_store), config).is_completed()
    row = complete_store.manifest.table().iloc[0]
    assert row["n_frames"] == 20
    overlay = exported(complete_store,
                       f"overlays/{GESTURE_AVI.stem}-{row['video_id'][:8]}.mp4")
    with av.open(overlay) as container:
        stream = container.streams.video[0]
        times = [float(frame.time) for frame in container.decode(stream)]
    assert len(times) == 7
    # one overlay frame per 3 source frames: 0.1 s apart at the source's 30 frames/s
    np.testing.assert_allclose(np.diff(times), 3 / row["fps"], rtol=0.02)
    samples = Path(exported(complete_store, f"videos/{row['video_id']}/samples"))
    shown = sorted(int(p.stem) for p in samples.glob("*.jpg"))
    assert shown and all(frame % 3 == 0 for frame in shown)
