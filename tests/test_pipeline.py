"""The six-stage pipeline end to end on real clips, in this process (so that tests can make a
task fail): exports readable by standard tools, a failing video, retries, an interrupted run,
and a configuration change that invalidates only what it affects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from prefect.task_runners import ThreadPoolTaskRunner

import handlabel.tasks.detect as detect_task
import handlabel.tasks.export_video as export_task
import handlabel.tasks.reconstruct as reconstruct_task
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

from .browser import CHROMIUM, inspect_page
from .conftest import GESTURE_AVI
from .media import write_clip

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


@pytest.fixture(scope="module")
def mirrored_clip(tmp_path_factory, sample):
    """A second real clip with other content: the gesture clip mirrored (a left hand)."""
    with av.open(str(GESTURE_AVI)) as container:
        frames = [f.to_ndarray(format="rgb24")[:, ::-1].copy() for f in container.decode(video=0)]
    return write_clip(tmp_path_factory.mktemp("mirrored") / "mirrored.mp4", frames[:12])


@pytest.fixture(scope="module")
def complete_store(gesture_store, tmp_path_factory):
    """This module's copy of the session's gesture store (its tests change it)."""
    store = tmp_path_factory.mktemp("complete") / "store"
    shutil.copytree(gesture_store, store)
    return DatasetStore(str(store))


def exported(store: DatasetStore, name: str) -> str:
    return f"{store.url}/export/{name}"


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


def test_the_exported_parameters_give_back_the_exported_joints(complete_store):
    """Every hand's parameters in hands.parquet, its track's skeleton included, pose the hand
    model onto its exported joints (left hands in the left-hand convention: the mirrored
    parameters of the right-hand model, mirrored back)."""
    import torch

    from handlabel.models.hand.default import DefaultHandModel
    from handlabel.models.hand.sides import MIRROR, MIRROR_ROTVEC
    from handlabel.models.network.s2hand import place_hand

    hands = pd.read_parquet(exported(complete_store, "hands.parquet"))
    assert np.isfinite(np.stack(hands["skeleton"])).all()
    assert {"left", "right"} <= set(hands["side"])  # the gesture clip has both slots
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


def test_a_failing_video_leaves_the_others_complete_and_a_rerun_completes_it(
        prefect_api, mirrored_clip, monkeypatch, tmp_path):
    store = tmp_path / "store"
    real = reconstruct_task.reconstruct_chunk
    broken = {}

    def fail_for_mirrored(dataset, video_id, chunk, config):
        row = dataset.manifest.get(video_id)
        if row["name"] == mirrored_clip.name:
            broken[video_id] = True
            raise OSError("disk full")
        return real(dataset, video_id, chunk, config)

    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", fail_for_mirrored)
    state = run([GESTURE_AVI, mirrored_clip], store)
    assert state.is_failed() and "disk full" in state.message
    table = DatasetStore(str(store)).manifest.table().set_index("name")
    assert table.loc[GESTURE_AVI.name, "export_state"] == "done"
    assert table.loc[mirrored_clip.name, "reconstruct_state"] == "failed"
    assert "disk full" in table.loc[mirrored_clip.name, "reconstruct_error"]

    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", real)
    state = run([GESTURE_AVI, mirrored_clip], store)
    assert state.is_completed(), state.message
    table = DatasetStore(str(store)).manifest.table()
    assert (table["export_state"] == "done").all()
    hands = pd.read_parquet(f"{store}/export/hands.parquet")
    assert set(hands["video_name"]) == {GESTURE_AVI.name, mirrored_clip.name}


def test_new_videos_are_labelled_with_the_stores_model_as_it_is(gesture_store, mirrored_clip,
                                                                prefect_api, tmp_path):
    """``handlabel label``'s run: the new video is ingested, detected, weighted, labelled
    and exported with the model the store has (its checkpoint and identity unchanged), the
    videos already there keep their labels, and the dataset files cover both."""
    from typer.testing import CliRunner

    from handlabel.flows.cli import app

    refused = CliRunner().invoke(app, ["label", str(tmp_path / "nothing"), str(mirrored_clip)])
    assert refused.exit_code == 2 and "nothing" in refused.output

    store = tmp_path / "store"
    shutil.copytree(gesture_store, store)
    dataset = DatasetStore(str(store))
    identity = dataset.model().attrs["identity"]
    before = finished(store)
    state = run([mirrored_clip], store, skip=("train",))
    assert state.is_completed(), state.message
    assert dataset.model().attrs["identity"] == identity
    after = finished(store)
    kept = [f"{s}_finished" for s in STAGES if s != "export"]
    assert after.loc[GESTURE_AVI.name, kept].equals(before.loc[GESTURE_AVI.name, kept]), \
        "the labels already there are kept"
    new = after.loc[mirrored_clip.name]
    assert new.drop("train_finished").notna().all(), "every stage but train ran for it"
    assert pd.isna(new["train_finished"]), "the model was not trained on it"
    hands = pd.read_parquet(f"{store}/export/hands.parquet")
    assert set(hands["video_name"]) == {GESTURE_AVI.name, mirrored_clip.name}


def test_a_task_that_fails_once_is_retried(complete_store, monkeypatch):
    real, calls = export_task.export_chunk, []

    def flaky(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 1:
            raise ConnectionError("object store hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(export_task, "export_chunk", flaky)
    state = run([GESTURE_AVI], complete_store.url, first_stage="export",
                overwrite_stage="export")
    assert state.is_completed(), state.message
    chunks = complete_store.video(complete_store.manifest.table()["video_id"].iloc[0]).n_chunks
    assert sorted(calls) == sorted([0, *range(chunks)]), "the failed chunk ran twice"


def test_an_interrupted_run_resumes_to_the_same_dataset(complete_store, monkeypatch, tmp_path):
    store = tmp_path / "store"
    real, seen = reconstruct_task.reconstruct_chunk, []

    def die_after_first_chunk(dataset, video_id, chunk, config):
        seen.append(chunk)
        if chunk != 0:
            raise RuntimeError("worker killed")
        return real(dataset, video_id, chunk, config)

    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", die_after_first_chunk)
    assert run([GESTURE_AVI], store).is_failed()
    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", real)
    resumed_chunks = []
    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk",
                        lambda d, v, c, cfg: resumed_chunks.append(c) or real(d, v, c, cfg))
    assert run([GESTURE_AVI], store).is_completed()
    assert 0 not in resumed_chunks, "the chunk done before the interruption is kept"

    expected = pd.read_parquet(exported(complete_store, "hands.parquet"))
    got = pd.read_parquet(f"{store}/export/hands.parquet")
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected)
    for column in ("keypoints_2d", "joints_3d", "quality", "hand_pose", "betas"):
        np.testing.assert_allclose(np.stack(got[column]).astype(float),
                                   np.stack(expected[column]).astype(float), atol=1e-4,
                                   err_msg=column)


def test_a_config_change_invalidates_only_the_stages_it_affects(complete_store, monkeypatch):
    store = complete_store
    before = store.manifest.table().iloc[0]
    network_runs = []
    real = reconstruct_task.reconstruct_chunk

    def counted(*args, **kwargs):
        network_runs.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(reconstruct_task, "reconstruct_chunk", counted)
    refit = ReconstructConfig(fit=FitConfig(steps=50))
    changed = CONFIG.model_copy(update={"reconstruct": refit})
    assert run([GESTURE_AVI], store.url, changed).is_completed()
    assert network_runs == [], "a fit-only change reuses the network step's chunks"
    after = store.manifest.table().iloc[0]
    for stage in ("ingest", "detect", "weight", "train"):
        assert after[f"{stage}_finished"] == before[f"{stage}_finished"], stage
    for stage in ("reconstruct", "export"):
        assert after[f"{stage}_finished"] > before[f"{stage}_finished"], stage


def test_a_failed_finish_fails_the_stage(complete_store, monkeypatch):
    """A finish task that cannot record the outcome must not leave the stage Completed with
    the video's row still 'running'."""
    def broken_record(*args, **kwargs):
        raise OSError("manifest write refused")

    monkeypatch.setattr(reconstruct_task, "finish_reconstruct", broken_record)
    refit = CONFIG.model_copy(update={"reconstruct": ReconstructConfig(fit=FitConfig(steps=30))})
    state = run([GESTURE_AVI], complete_store.url, refit)
    assert not state.is_completed()
    assert "finish" in state.message and "manifest write refused" in state.message


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


def test_every_rerun_form_on_a_store_with_a_failed_video(prefect_api, mirrored_clip,
                                                         monkeypatch, tmp_path):
    """A video whose detect failed on one chunk: --failed-only redoes exactly that chunk,
    then what depends on it (its weights, the retrain on the grown set, every video's labels,
    since the model changed); a plain rerun of a complete store redoes nothing; --stage
    redoes that stage for every video and only what follows it."""
    store, real, calls = tmp_path / "store", detect_task.detect_chunk, []
    broken = {"chunk": (mirrored_clip.name, 1)}

    def detect(dataset, video_id, chunk, config, detector):
        calls.append((dataset.manifest.get(video_id)["name"], chunk))
        if calls[-1] == broken.get("chunk"):
            raise OSError("camera cable pulled")
        return real(dataset, video_id, chunk, config, detector)

    monkeypatch.setattr(detect_task, "detect_chunk", detect)
    assert run([GESTURE_AVI, mirrored_clip], store).is_failed()
    before = finished(store)
    assert pd.isna(before.loc[mirrored_clip.name, "weight_finished"])
    assert rerun(store, "weight", failed_only=True) is None, "nothing failed in weight"

    broken.clear()
    calls.clear()
    assert rerun(store, failed_only=True).is_completed()
    assert calls == [(mirrored_clip.name, 1)], "only the failed chunk is detected again"
    after = finished(store)
    for stage in ("ingest", "detect", "weight"):
        assert after.loc[GESTURE_AVI.name, f"{stage}_finished"] == \
            before.loc[GESTURE_AVI.name, f"{stage}_finished"], stage
    assert after.loc[GESTURE_AVI.name, "reconstruct_finished"] > \
        before.loc[GESTURE_AVI.name, "reconstruct_finished"], "the retrain made it stale"
    assert (DatasetStore(str(store)).manifest.table()["export_state"] == "done").all()

    calls.clear()
    assert rerun(store).is_completed()
    assert calls == [] and finished(store).equals(after), "a complete store: nothing redone"

    assert rerun(store, "export").is_completed()
    redone = finished(store)
    assert (redone["export_finished"] > after["export_finished"]).all()
    assert redone.drop(columns="export_finished").equals(after.drop(columns="export_finished"))


def completed(store: DatasetStore) -> DatasetStore:
    """The module's store with every stage done again (earlier tests leave it changed or
    failed on purpose); a no-op run when it is."""
    state = run([GESTURE_AVI], store.url)
    assert state.is_completed(), state.message
    return store


def test_what_a_plain_rerun_would_redo_is_known_from_the_store_alone(complete_store):
    """Each config change is pending at the stage it changes (the later stages follow it only
    once it has run); a deleted dataset file is pending too; a complete store has nothing."""
    from handlabel.flows.rerun import pending_work
    from handlabel.tasks.export import DATASET_FILES

    store = completed(complete_store)
    video = store.manifest.table()["video_id"].iloc[0]
    assert pending_work(store, CONFIG) == {}
    changed = {"weight": CONFIG.weight.model_copy(update={"outlier_factor": 0.4}),
               "train": CONFIG.train.model_copy(update={"epochs": 3}),
               "reconstruct": CONFIG.reconstruct.model_copy(update={"refine_steps": 3}),
               "export": CONFIG.export.model_copy(update={"report_samples": 3})}
    expected = {"weight": [video], "train": ["model"], "reconstruct": [video],
                "export": [video, DATASET_FILES]}
    for stage, section in changed.items():
        config = CONFIG.model_copy(update={stage: section})
        assert pending_work(store, config) == {stage: expected[stage]}, stage
    Path(exported(store, "coco_wholebody_hands.json")).unlink()
    assert pending_work(store, CONFIG) == {"export": [DATASET_FILES]}


def test_a_rerun_with_nothing_to_do_answers_without_a_server_and_one_with_work_does_it(
        complete_store, dask_cluster, tmp_path):
    """``handlabel rerun``: on a complete store it starts no Prefect API, no cluster, writes
    no run log; with a dataset file gone it runs export alone and writes the file again."""
    import yaml
    from typer.testing import CliRunner

    from handlabel.flows.cli import app

    store = completed(complete_store)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG.model_dump(mode="json")))
    logs = Path(store.url, "logs")
    before = set(logs.glob("run-*.log"))
    result = CliRunner().invoke(app, ["rerun", store.url, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output and "report:" in result.output
    assert set(logs.glob("run-*.log")) == before, "no run was started"
    assert "Starting temporary server" not in result.output

    finished_before = finished(store.url)
    Path(exported(store, "hands.parquet")).unlink()
    result = CliRunner().invoke(app, ["rerun", store.url, "--config", str(config),
                                      "--dask-address", dask_cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert "to do: export dataset files" in result.output
    assert Path(exported(store, "hands.parquet")).is_file()
    assert finished(store.url).equals(finished_before), "no video's stage was redone"


def test_a_run_page_shows_the_status_and_where_the_dataset_is(complete_store):
    """The artifacts a deployment's run page shows: the status table, the dataset files."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from handlabel.flows.export import export_flow

    state = export_flow(completed(complete_store).url, CONFIG, overwrite=True,
                        return_state=True)
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

    from handlabel.flows.export import export_flow

    config = CONFIG.model_copy(update={"export": ExportConfig(formats=["rerun"],
                                                              report_samples=2)})
    assert export_flow(completed(complete_store).url, config,
                       return_state=True).is_completed()
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
