"""The rig stage end to end on a synthetic two-camera rig with a known moving hand: two short
clips ingested as the rig's cameras (the second one frame late, lined up by its offset),
their detections the hand's exact projections, a network whose start is at the wrong
depth. The stage must triangulate the hand where it is, fit it over both views, and export
the world- and per-camera labels and one overlay per camera."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from handlabel.config import (
    ExportConfig,
    HandlabelConfig,
    IngestConfig,
    RigConfig,
    RigStageConfig,
)
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.training.setup import checkpoint_bytes
from handlabel.models.training.trainer import network_state
from handlabel.storage.stage_arrays import ArraySpec
from handlabel.storage.store import DatasetStore
from handlabel.tasks.export import export_dataset
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one
from handlabel.tasks.rig import run_rig
from handlabel.tasks.rig_quality import rig_in_sample, rig_quality
from handlabel.tasks.rig_register import register_rig, with_rig_intrinsics

from .media import numbered_frames, write_clip
from .networks import tiny_network
from .test_rig import posed_hand, synthetic_rig

FRAMES, LATE = 10, 1  # rig frames; the second camera's extra first frame
WIDTH, HEIGHT, SCALE = 160, 120, 0.25  # the clips, a quarter of the synthetic rig's 640x480


def _calibration(rig, path) -> None:
    K = np.diag([SCALE, SCALE, 1.0]) @ rig.K[0]
    path.write_text(json.dumps({"unit_m": 0.5, **{
        name: {"K": K.tolist(), "dist": [0, 0, 0, 0, 0], "R_world_to_cam": rig.R[i].tolist(),
               "t_world_to_cam": (rig.t[i] / 0.5).tolist()}  # in units of 0.5 m
        for i, name in enumerate(rig.names)}}))


def _hand_path(joints: np.ndarray) -> np.ndarray:
    """(FRAMES, 21, 3) the hand moving 1 cm per frame along x, world metres."""
    return joints[None] + np.arange(FRAMES)[:, None, None] * np.array([0.01, 0.0, 0.0])


def _write_stages(store, video_id, rig, camera, world_joints, late, depth_error) -> None:
    """What detect, weight and reconstruct (network step and labels) would have stored; the
    labels are the true joints pushed ``depth_error`` times further along their rays (a
    wrong depth this camera cannot see)."""
    n = FRAMES + late
    K = np.asarray(store.video(video_id).attrs["K"])
    in_camera = rig.to_camera(world_joints, camera)
    pixels = in_camera[..., :2] / in_camera[..., 2:] * K[0, 0] + K[:2, 2]
    keypoints = np.full((n, 2, 21, 3), np.nan, np.float32)
    keypoints[late:, 1, :, :2], keypoints[late:, 1, :, 2] = pixels, 0.9
    present = np.zeros((n, 2), bool)
    present[late:, 1] = True
    world = np.full((n, 2, 21, 3), np.nan, np.float32)
    world[late:, 1] = in_camera - in_camera.mean(1, keepdims=True)
    anchor = np.full((n, 2, 3), np.nan, np.float32)
    anchor[late:, 1] = in_camera[:, 9] * 1.3  # the network's depth: 30% too far
    labels = np.full((n, 2, 21, 3), np.nan, np.float32)
    labels[late:, 1] = in_camera * depth_error
    stages = {
        "detect": {"present": present, "keypoints": keypoints, "world": world,
                   "world_confidence": np.where(present[..., None], 0.9, 0.0) * np.ones(21),
                   "mirrored": np.zeros((n, 2), bool)},
        "weight": {"joint": np.where(present[..., None], 0.81, 0.0) * np.ones(21)},
        "network": {"global_orient": np.zeros((n, 2, 3)), "hand_pose": np.zeros((n, 2, 15, 3)),
                    "translation": anchor, "scale": np.ones((n, 2))},
        "reconstruct": {"present": present, "interpolated": np.zeros((n, 2), bool),
                        "joints_3d": labels},
    }
    for stage, values in stages.items():
        spec = {k: ArraySpec(v.shape[1:], "bool" if v.dtype == bool else "float32")
                for k, v in values.items()}
        arrays = store.create_stage(video_id, stage, n_frames=n, chunk_frames=n, spec=spec,
                                    attrs={})
        arrays.write_chunk(0, 0, values)
    store.manifest.upsert(video_id, reconstruct_state="done")


def _store_model(store) -> None:
    net = tiny_network(DefaultHandModel())
    payload = checkpoint_bytes({"net": network_state(net), "spec": asdict(net.spec),
                                "input_size": 64})
    models = store.model()
    models.reset(hand_model="default")
    models.write_checkpoint(0, payload)
    models.update_attrs(complete=True, identity="synthetic", input_size=64)


def test_the_rig_stage_triangulates_fits_and_exports_a_known_hand(tmp_path):
    rig = synthetic_rig(2)
    _, joints, _ = posed_hand(6)
    world_joints = _hand_path(joints)
    _calibration(rig, tmp_path / "calibration.json")
    rig_config = RigConfig(name="pair", calibration=str(tmp_path / "calibration.json"),
                           cameras={"cam0": "first.mp4", "cam1": "second.mp4"},
                           offsets={"cam1": LATE})
    config = HandlabelConfig(rig=RigStageConfig(rigs=[rig_config]),
                             export=ExportConfig(formats=["overlay", "rerun"]))
    ingest = with_rig_intrinsics(IngestConfig(compression={"codec": "zstd"}), config.rig)
    store = DatasetStore(str(tmp_path / "store"))
    for name, late in (("first.mp4", 0), ("second.mp4", LATE)):
        write_clip(tmp_path / name, numbered_frames(FRAMES + late, WIDTH, HEIGHT))
        ingest_one(store, identify(str(tmp_path / name)), ingest, False,
                   logging.getLogger("test"))
    attrs = register_rig(store, rig_config, config.rig)
    assert attrs["n_frames"] == FRAMES
    for camera, name in enumerate(("cam0", "cam1")):
        video_id = attrs["members"][name]
        # the calibration's K reached the stored video
        assert np.allclose(store.video(video_id).attrs["K"], np.diag([SCALE, SCALE, 1]) @ rig.K[0])
        _write_stages(store, video_id, rig, camera, world_joints, attrs["offsets"][name],
                      (1.0, 1.2)[camera])
    _store_model(store)

    assert run_rig(store, "pair", config).startswith("labelled")
    written = export_dataset(store, [], config.export)
    assert len(written["rig pair"]) == 5  # table, calibration, 2 overlays, the recording
    # the held-out view sees the depth error of cam1's own labels, and no error in cam0's
    quality = rig_quality(store, "pair").set_index("from")
    assert quality.loc["cam0", "held-out px (mean)"] < 0.1
    assert quality.loc["cam1", "held-out px (mean)"] > 3.0
    assert (quality["frames"] == FRAMES).all()
    in_sample = rig_in_sample(store, "pair")  # the rig fit's own residual, reported apart
    assert list(in_sample["camera"]) == ["cam0", "cam1"]
    assert (in_sample["in-sample px (median)"] < 1.0).all(), in_sample
    triangulated = store.rig_stage("pair", "triangulate")
    assert triangulated.read("present")[:, 1].all() and not triangulated.read("present")[:, 0].any()
    assert np.abs(triangulated.read("joints")[:, 1] - world_joints).max() < 1e-3
    labels = store.rig_stage("pair", "labels")
    error_mm = np.linalg.norm(labels.read("joints_world")[:, 1] - world_joints, axis=-1) * 1000
    assert error_mm.mean() < 3.0, error_mm.mean()  # the network's start was 30% too deep
    assert (labels.read("reprojection_px")[:, 1] < 3.0).all()

    from handlabel.storage.fs import filesystem

    fs, root = filesystem(f"{store.url}/export")
    with fs.open(f"{root}/rigs/pair/hands.parquet", "rb") as handle:
        table = pd.read_parquet(io.BytesIO(handle.read()))
    assert len(table) == FRAMES and set(table["side"]) == {"right"}
    assert (table["frame_cam1"] - table["frame_cam0"] == LATE).all()
    in_cam1 = np.stack(table["joints_cam1"]).reshape(-1, 21, 3)
    np.testing.assert_allclose(in_cam1, rig.to_camera(np.stack(table["joints_world"]).reshape(
        -1, 21, 3), 1), atol=1e-5)
    # what commands print at their end: the rig's table among the dataset files
    assert ("rig table", f"{root}/rigs/pair/hands.parquet") in store.exported_files()
    assert fs.exists(f"{root}/overlays/rig-pair-cam0.mp4")
    assert fs.exists(f"{root}/overlays/rig-pair-cam1.mp4")
    _check_recording(f"{root}/rerun/rig-pair.rrd")
    # current for the same inputs and config: nothing is redone
    assert run_rig(store, "pair", config) == "up to date"
    assert export_dataset(store, [], config.export)["rig pair"] == []


def _check_recording(path: str) -> None:
    """Rerun's own reader: both cameras posed in one world, their frames, the hand in 3D."""
    import re

    from rerun.chunk import RrdReader

    summary = RrdReader(path).stream().collect().summary()
    rows: dict[str, int] = {}
    for entity, count, columns in re.findall(r"^(\S+) rows=(\d+) .*cols=(.*)$", summary,
                                             re.MULTILINE):
        if "Clear:" not in columns:
            rows[entity] = rows.get(entity, 0) + int(count)
    for camera in ("cam0", "cam1"):
        assert rows[f"/world/{camera}"] >= 1  # pose and pinhole, static
        assert rows[f"/world/{camera}/image"] == FRAMES
        assert rows[f"/world/{camera}/image/labels/right"] == FRAMES
    for entity in ("mesh", "skeleton", "triangulated"):
        assert rows[f"/world/hands/right/{entity}"] == FRAMES
    assert "/world/hands/left/mesh" not in rows

