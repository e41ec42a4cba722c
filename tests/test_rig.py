"""Calibrated rigs: calibration files in both formats, rigs checked at ingest, triangulation
and the binocular losses on a synthetic rig with an exact calibration and a known hand."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handlabel.config import RigConfig, RigStageConfig
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.losses.stereo import carry, photo_consistency, stereo_losses, warp_into
from handlabel.models.render import make_renderer
from handlabel.models.render.base import Light
from handlabel.models.rig.cameras import RigGeometry
from handlabel.models.rig.triangulation import match_cost, triangulate_hand
from handlabel.storage.calibration import CalibrationError, read_calibration
from handlabel.storage.store import DatasetStore
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one
from handlabel.tasks.rig_register import RigError, register_rig

from .media import numbered_frames, write_clip

STEREO = Path(__file__).resolve().parents[2] / "shared" / "data" / "stereo"


def _look_at(eye: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera R, t of a camera at ``eye`` looking at ``target`` (y down)."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, -1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ eye


def synthetic_rig(n: int = 2, distortion: float = 0.0) -> RigGeometry:
    """``n`` cameras 0.5 m from the origin, 40 degrees apart around it, 640x480, f = 600."""
    K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])
    poses = [_look_at(0.5 * np.array([np.sin(a), 0.05, -np.cos(a)]), np.zeros(3))
             for a in np.radians(40 * np.arange(n) - 20 * (n - 1))]
    dist = np.array([distortion, 0, 0, 0, 0])
    return RigGeometry(tuple(f"cam{i}" for i in range(n)), np.stack([K] * n),
                       tuple(dist for _ in range(n)), np.stack([p[0] for p in poses]),
                       np.stack([p[1] for p in poses]))


def posed_hand(seed: int = 0) -> tuple[np.ndarray, np.ndarray, DefaultHandModel]:
    """A known hand at the world origin: vertices (V, 3) and joints (21, 3), metres."""
    torch.manual_seed(seed)
    model = DefaultHandModel()
    pose = torch.randn(1, 15, 3) * 0.2
    with torch.no_grad():
        out = model(torch.tensor([[0.3, -0.4, 0.2]]), pose, torch.zeros(1, model.n_shape))
    centre = out.joints[0].mean(0)
    return ((out.vertices[0] - centre).double().numpy(),
            (out.joints[0] - centre).double().numpy(), model)


def observed(rig: RigGeometry, joints: np.ndarray) -> np.ndarray:
    """(C, 21, 2) detected pixels, through each lens' distortion."""
    return np.stack([rig.project(rig.to_camera(joints, c), c) for c in range(len(rig))])


def test_triangulation_recovers_the_joints_through_the_lens_distortion():
    rig = synthetic_rig(2, distortion=-0.2)
    _, joints, _ = posed_hand()
    detected = observed(rig, joints)
    pixels = np.stack([rig.undistort(detected[c], c) for c in range(2)])
    result = triangulate_hand(pixels, np.ones((2, 21)), rig.projections(), np.full(2, 100.0),
                              0.25, 0.05)
    assert np.abs(result.joints - joints).max() < 1e-4
    assert result.confidence.min() > 0.99
    # without undistortion the same detections land elsewhere: the test can tell
    naive = triangulate_hand(detected, np.ones((2, 21)), rig.projections(), np.full(2, 100.0),
                             0.25, 0.05)
    assert np.abs(naive.joints - joints).max() > 1e-3


def test_one_bad_view_of_three_is_left_out_and_two_disagreeing_views_lose_confidence():
    rig = synthetic_rig(3)
    _, joints, _ = posed_hand(1)
    rng = np.random.default_rng(0)
    pixels = observed(rig, joints) + rng.normal(0, 0.5, (3, 21, 2))
    pixels[2, :8] += 60.0  # a wrong detection in the third view for 8 joints
    result = triangulate_hand(pixels, np.ones((3, 21)), rig.projections(), np.full(3, 120.0),
                              0.25, 0.05)
    error_mm = np.linalg.norm(result.joints - joints, axis=-1) * 1000
    assert error_mm.max() < 3.0
    assert not result.used[2, :8].any() and result.used[:, 8:].all()
    # two views only: the bad joints cannot be told apart, but their confidence says so
    pair = triangulate_hand(pixels[1:], np.ones((2, 21)), rig.projections()[1:],
                            np.full(2, 120.0), 0.25, 0.05)
    assert pair.confidence[:8].max() < 0.2 < pair.confidence[8:].min()


def test_hands_are_matched_across_views_by_geometry():
    rig = synthetic_rig(2)
    _, joints, _ = posed_hand(2)
    other = joints + np.array([0.12, 0.08, 0.05])  # a second hand beside the first
    seen = observed(rig, joints), observed(rig, other)
    ones, P, sizes = np.ones(21), rig.projections(), np.array([100.0, 100.0])
    same = match_cost(seen[0][0], ones, seen[0][1], ones, P, sizes)
    crossed = match_cost(seen[0][0], ones, seen[1][1], ones, P, sizes)
    # two views cannot tell points apart along their epipolar lines, so a wrong pairing
    # is not always over the inlier threshold; it always costs far more than the right one
    assert same < 0.01 and crossed > 0.1


def _textured_images(rig, vertices, model, renderer, size=(96, 96)):
    """Camera crops of the hand: K scaled to ``size``, a random per-vertex texture."""
    torch.manual_seed(0)
    colours = torch.rand(1, len(vertices), 3)
    scale = np.diag([size[1] / 640, size[0] / 480, 1.0])
    Ks = torch.tensor(scale @ rig.K, dtype=torch.float32)
    images, silhouettes, in_camera = [], [], []
    for c in range(len(rig)):
        here = torch.tensor(rig.to_camera(vertices, c), dtype=torch.float32)[None]
        out = renderer.render(here, model.faces, colours, Ks[c:c + 1], *size,
                              Light.ambient_only(1))
        images.append(out.image)
        silhouettes.append(out.silhouette)
        in_camera.append(here)
    return images, silhouettes, in_camera, Ks


def test_the_carried_mesh_lands_on_the_other_view_and_the_true_pose_is_most_photo_consistent():
    rig = synthetic_rig(2)
    vertices, _, model = posed_hand(3)
    renderer = make_renderer("deodr")
    images, silhouettes, in_camera, Ks = _textured_images(rig, vertices, model, renderer)
    R, t = (torch.tensor(a, dtype=torch.float32)[None] for a in rig.between(0, 1))
    carried = carry(in_camera[0], R, t)
    assert (carried - in_camera[1]).abs().max() < 1e-5

    def photo(mesh_in_0):
        warped, silhouette = warp_into(renderer, mesh_in_0, model.faces, Ks[:1], images[0], R,
                                       t, Ks[1:], 96, 96)
        return float(photo_consistency(warped, images[1], silhouettes[1] * silhouette))

    true = photo(in_camera[0])
    shifted = photo(in_camera[0] + torch.tensor([0.01, 0.0, 0.0]))
    turned = torch.tensor(cv2.Rodrigues(np.array([0.0, 0.3, 0.0]))[0], dtype=torch.float32)
    centre = in_camera[0].mean(1, keepdim=True)
    rotated = photo((in_camera[0] - centre) @ turned.T + centre)
    assert true < 0.7 * min(shifted, rotated)


def test_the_stereo_terms_follow_their_switches_and_vanish_for_agreeing_meshes():
    rig = synthetic_rig(2)
    vertices, _, model = posed_hand(4)
    renderer = make_renderer("deodr")
    images, silhouettes, in_camera, Ks = _textured_images(rig, vertices, model, renderer)
    R, t = (torch.tensor(a, dtype=torch.float32)[None] for a in rig.between(0, 1))
    terms = stereo_losses(renderer, model.faces, in_camera[0], in_camera[1], in_camera[0],
                          images[0], images[1], silhouettes[1], Ks[:1], Ks[1:], R, t)
    assert set(terms) == {"photo", "mask", "chamfer", "normal", "edge", "laplacian", "total"}
    assert terms["chamfer"] < 1e-9 and terms["normal"] < 1e-5 and terms["edge"] < 1e-9
    from handlabel.models.losses.stereo import StereoWeights

    only = stereo_losses(renderer, model.faces, in_camera[0], in_camera[1], in_camera[0],
                         images[0], images[1], silhouettes[1], Ks[:1], Ks[1:], R, t,
                         StereoWeights(photo=0, mask=0, laplacian=0, edge=0))
    assert set(only) == {"chamfer", "normal", "total"}


def _sample_calibration() -> dict:
    return json.loads((STEREO / "calibration.json").read_text())


def test_the_projects_and_anipose_calibration_files_read_the_same(tmp_path):
    from aniposelib.cameras import Camera, CameraGroup

    raw = _sample_calibration()
    ours = read_calibration(STEREO / "calibration.json", unit_m=0.01)
    cameras = [Camera(matrix=np.array(raw[n]["K"]), dist=np.array(raw[n]["dist_k1k2p1p2k3"]),
                      size=[720, 720], rvec=cv2.Rodrigues(np.array(raw[n]["R_world_to_cam"]))[0]
                      .ravel(), tvec=np.array(raw[n]["t_world_to_cam"]), name=n)
               for n in ("cam0", "cam1")]
    CameraGroup(cameras).dump(str(tmp_path / "calibration.toml"))
    theirs = read_calibration(tmp_path / "calibration.toml", unit_m=0.01)
    assert set(theirs.cameras) == {"cam0", "cam1"}
    for name in ("cam0", "cam1"):
        a, b = ours.cameras[name], theirs.cameras[name]
        np.testing.assert_allclose(a.K, b.K)
        np.testing.assert_allclose(a.R, b.R, atol=1e-9)
        np.testing.assert_allclose(a.t, b.t)
        np.testing.assert_allclose(a.dist, b.dist)
        assert b.size == (720, 720)
    # the pair's own relative pose agrees with the one the file states
    R01 = ours.cameras["cam1"].R @ ours.cameras["cam0"].R.T
    np.testing.assert_allclose(R01, np.array(raw["R_cam0_to_cam1"]), atol=1e-5)


def test_a_calibration_without_its_unit_or_with_a_bad_camera_is_refused(tmp_path):
    with pytest.raises(CalibrationError, match=r"calibration\.json: the unit"):
        read_calibration(STEREO / "calibration.json")
    raw = _sample_calibration()
    raw["cam1"]["t_world_to_cam"] = [1.0, 2.0]
    (tmp_path / "bad.yaml").write_text(json.dumps(raw))
    with pytest.raises(CalibrationError, match=r"bad.yaml: camera 'cam1': t_world_to_cam has "
                                               r"shape \(2,\)"):
        read_calibration(tmp_path / "bad.yaml", unit_m=0.01)


def _ingested(tmp_path, lengths: dict[str, int]) -> DatasetStore:
    store = DatasetStore(str(tmp_path / "store"))
    from handlabel.config import IngestConfig

    for name, n in lengths.items():
        path = tmp_path / name
        write_clip(path, numbered_frames(n))
        ingest_one(store, identify(str(path)), IngestConfig(compression={"codec": "zstd"}),
                   False, logging.getLogger("test"))
    return store


def _rig(tmp_path, **fields) -> RigConfig:
    raw = _sample_calibration()
    for name in ("cam0", "cam1"):
        raw[name].pop("size", None)
    (tmp_path / "calibration.json").write_text(json.dumps({"unit_m": 0.01, **raw}))
    return RigConfig(name="pair", calibration=str(tmp_path / "calibration.json"),
                     cameras={"cam0": "left*.mp4", "cam1": "right*.mp4"}, **fields)


def test_a_rig_whose_videos_disagree_is_refused_naming_them(tmp_path):
    store = _ingested(tmp_path, {"left.mp4": 12, "right.mp4": 15})
    with pytest.raises(RigError, match=r"rig pair: .*different frame counts .*cam0 12, cam1 15"):
        register_rig(store, _rig(tmp_path), RigStageConfig())
    assert store.rig("pair") is None
    # the offset lines them up; the rig is then recorded with its members
    attrs = register_rig(store, _rig(tmp_path, offsets={"cam1": 3}), RigStageConfig())
    assert attrs["n_frames"] == 12 and attrs["offsets"] == {"cam0": 0, "cam1": 3}
    assert set(store.rig("pair").attrs["members"]) == {"cam0", "cam1"}


def test_a_rig_camera_without_its_video_or_calibration_is_refused(tmp_path):
    store = _ingested(tmp_path, {"left.mp4": 6})
    with pytest.raises(RigError, match=r"camera cam1 \('right\*.mp4'\) must match exactly one "
                                       r"ingested video; it matches none"):
        register_rig(store, _rig(tmp_path), RigStageConfig())
    rig = _rig(tmp_path).model_copy(update={"cameras": {"cam0": "left*", "cam7": "x*"}})
    with pytest.raises(RigError, match="has no camera cam7"):
        register_rig(store, rig, RigStageConfig())


def test_training_on_a_rigs_pairs_adds_the_stereo_terms_in_both_directions():
    from handlabel.models.hand.limits import model_limit_frames
    from handlabel.models.losses.stereo import StereoWeights
    from handlabel.models.training.batches import HandCrops
    from handlabel.models.training.trainer import Trainer, TrainSettings

    from .networks import tiny_network

    rig = synthetic_rig(2)
    vertices, joints, model = posed_hand(5)
    renderer = make_renderer("deodr")
    images, _, _, Ks = _textured_images(rig, vertices, model, renderer, size=(64, 64))
    scale = np.diag([64 / 640, 64 / 480, 1.0])
    keypoints = torch.tensor(np.stack([
        (observed(rig, joints)[c] + 0.5) * np.diag(scale)[:2] - 0.5 for c in range(2)]),
        dtype=torch.float32)
    crops = HandCrops((torch.cat(images) * 255).round().to(torch.uint8), keypoints,
                      torch.ones(2, 21), torch.ones(2), Ks)
    R, t = rig.between(0, 1)
    crops.pairs = torch.tensor([[0, 1]])
    crops.pair_R, crops.pair_t = torch.tensor(R)[None], torch.tensor(t)[None]
    settings = TrainSettings(epochs=1, batch_size=2, input_size=64, render_size=32,
                             weights={"reprojection": 1e-3}, lr_milestones=(),
                             augmentation=None, stereo=StereoWeights(), pairs_per_step=2)
    trainer = Trainer(tiny_network(model), settings, model_limit_frames(model), renderer)
    metrics = trainer.train_epoch(crops)
    stereo = {k: v for k, v in metrics.items() if k.startswith("loss_stereo")}
    assert set(stereo) == {"loss_stereo", *(f"loss_stereo_{n}" for n in
                                            ("photo", "mask", "chamfer", "normal", "laplacian"))}
    assert all(np.isfinite(v) and v > 0 for v in stereo.values())
    # no frozen network given: no pseudo-mesh, no edge term; without pairs no stereo at all
    crops.pairs = None
    assert not any(k.startswith("loss_stereo") for k in trainer.train_epoch(crops))
