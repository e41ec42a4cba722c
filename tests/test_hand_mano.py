"""The MANO loader and skinning on a synthetic pickle with MANO's exact structure and shapes.

The pickle is written the way MANO_RIGHT.pkl was: a dict of numpy arrays, a chumpy ``Ch`` for
shapedirs and a scipy ``csc_matrix`` for J_regressor. Stand-in classes under those module
names are registered only while writing, so loading proves neither package is needed.
"""

from __future__ import annotations

import math
import pickle
import sys
import types

import numpy as np
import pytest
import roma
import torch

from handlabel.models.hand import mirror
from handlabel.models.hand.mano import (
    FINGERTIP_VERTICES,
    TO_FILE_ORDER,
    ManoFileError,
    ManoHandModel,
    load_mano_arrays,
)

V, F, K, S = 778, 1538, 16, 10
PARENTS = [4294967295, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]  # MANO's kintree row 0


class Ch:  # pickled like chumpy.ch.Ch: its __dict__, with the array under "x"
    def __init__(self, x):
        self.x = x
        self.dterms = ["x"]


class csc_matrix:
    def __init__(self, dense):
        self._shape = dense.shape
        self.format = "csc"
        columns = [np.flatnonzero(dense[:, j]) for j in range(dense.shape[1])]
        self.indices = np.concatenate(columns).astype(np.int32)
        self.data = np.concatenate([dense[c, j] for j, c in enumerate(columns)])
        self.indptr = np.cumsum([0] + [len(c) for c in columns]).astype(np.int32)


def synthetic_mano(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    owner = np.arange(V) % K  # each vertex belongs to one joint
    joints = rng.normal(0, 0.03, (K, 3))
    v_template = joints[owner] + rng.normal(0, 0.005, (V, 3))
    regressor = np.zeros((K, V))
    for k in range(K):
        regressor[k, owner == k] = 1.0 / (owner == k).sum()
    weights = np.eye(K)[owner]
    return {
        "hands_components": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "f": rng.integers(0, V, (F, 3)).astype(np.uint32),
        "J_regressor": regressor, "kintree_table": np.array([PARENTS, list(range(K))]),
        "J": regressor @ v_template, "bs_style": "lbs",
        "hands_coeffs": rng.normal(size=(1554, 45)), "weights": weights,
        "posedirs": rng.normal(0, 0.001, (V, 3, 135)), "hands_mean": rng.normal(0, 0.1, 45),
        "v_template": v_template, "shapedirs": rng.normal(0, 0.01, (V, 3, S)),
        "bs_type": "lrotmin",
    }


@pytest.fixture
def mano_file(tmp_path, monkeypatch):
    arrays = synthetic_mano()
    chumpy, chumpy_ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    sparse = types.ModuleType("scipy.sparse.csc")
    Ch.__module__, csc_matrix.__module__ = "chumpy.ch", "scipy.sparse.csc"
    chumpy_ch.Ch, sparse.csc_matrix = Ch, csc_matrix
    with monkeypatch.context() as patch:
        for name, module in [("chumpy", chumpy), ("chumpy.ch", chumpy_ch),
                             ("scipy.sparse.csc", sparse)]:
            patch.setitem(sys.modules, name, module)
        content = dict(arrays, shapedirs=Ch(arrays["shapedirs"]),
                       J_regressor=csc_matrix(arrays["J_regressor"]))
        path = tmp_path / "MANO_RIGHT.pkl"
        path.write_bytes(pickle.dumps(content, protocol=2))
    assert "chumpy" not in sys.modules
    return path, arrays


def zeros(batch=1):
    return torch.zeros(batch, 3), torch.zeros(batch, 15, 3), torch.zeros(batch, S)


def test_arrays_load_without_chumpy_or_scipy(mano_file):
    path, arrays = mano_file
    loaded = load_mano_arrays(path)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        np.testing.assert_allclose(loaded[key], arrays[key])
    assert loaded["f"].shape == (F, 3) and "chumpy" not in sys.modules


def test_zero_pose_gives_the_template_and_its_joints_in_file_order(mano_file):
    path, arrays = mano_file
    out = ManoHandModel(path)(*zeros())
    np.testing.assert_allclose(out.vertices[0], arrays["v_template"], atol=1e-6)
    skeleton = arrays["J_regressor"] @ arrays["v_template"]
    expected = np.concatenate([skeleton, arrays["v_template"][list(FINGERTIP_VERTICES)]])
    np.testing.assert_allclose(out.joints[0], expected[list(TO_FILE_ORDER)], atol=1e-6)
    assert out.joints.shape == (1, 21, 3)
    np.testing.assert_allclose(out.joints[0, 4], arrays["v_template"][744], atol=1e-6)  # thumb tip
    np.testing.assert_allclose(out.joints[0, 1], skeleton[13], atol=1e-6)  # thumb base


def test_shape_blend_shapes_add_linearly(mano_file):
    path, arrays = mano_file
    betas = torch.linspace(-2, 2, S)[None]
    out = ManoHandModel(path)(torch.zeros(1, 3), torch.zeros(1, 15, 3), betas)
    expected = arrays["v_template"] + arrays["shapedirs"] @ betas[0].numpy()
    np.testing.assert_allclose(out.vertices[0], expected, atol=1e-5)


def test_global_rotation_turns_the_hand_about_the_wrist(mano_file):
    path, arrays = mano_file
    rotvec = torch.tensor([[0.0, 0.0, math.pi / 2]])
    out = ManoHandModel(path)(rotvec, torch.zeros(1, 15, 3), torch.zeros(1, S))
    wrist = (arrays["J_regressor"] @ arrays["v_template"])[0]
    R = roma.rotvec_to_rotmat(rotvec)[0].numpy()
    np.testing.assert_allclose(out.vertices[0], (arrays["v_template"] - wrist) @ R.T + wrist,
                               atol=1e-5)


def test_finger_pose_keeps_bones_rigid_and_adds_pose_blend_shapes(mano_file):
    path, arrays = mano_file
    model = ManoHandModel(path)
    pose = torch.zeros(1, 15, 3)
    pose[0, 0] = torch.tensor([0.0, 0.0, 0.8])  # bend index 1 (MANO joint 1)
    pose[0, 12] = torch.tensor([0.3, 0.0, 0.0])  # thumb 1
    out = model(torch.zeros(1, 3), pose, torch.zeros(1, S))
    rest = model(*zeros())
    bones = [(0, 5), (5, 6), (6, 7), (1, 2), (2, 3)]  # wrist-index, index, thumb (file order)
    for a, b in bones:  # skeleton bones keep their length
        assert torch.linalg.norm(out.joints[0, a] - out.joints[0, b]).item() == pytest.approx(
            torch.linalg.norm(rest.joints[0, a] - rest.joints[0, b]).item(), rel=1e-5)
    # vertices owned by the root only move by the pose blend shapes
    rotations = roma.rotvec_to_rotmat(torch.cat([torch.zeros(1, 1, 3), pose], 1))[0, 1:]
    feature = (rotations - torch.eye(3)).reshape(-1).numpy()
    root = np.arange(V) % K == 0
    expected = arrays["v_template"] + arrays["posedirs"] @ feature
    np.testing.assert_allclose(out.vertices[0, root], expected[root], atol=1e-5)


def test_pca_pose_space_and_gradients(mano_file):
    path, arrays = mano_file
    model = ManoHandModel(path, n_pca=6)
    coefficients = torch.zeros(2, 6, requires_grad=True)
    np.testing.assert_allclose(model.pose_from_pca(coefficients.detach())[0].reshape(-1),
                               arrays["hands_mean"], atol=1e-6)
    unit = torch.zeros(1, 6)
    unit[0, 2] = 1.0
    np.testing.assert_allclose(model.pose_from_pca(unit)[0].reshape(-1),
                               arrays["hands_components"][2] + arrays["hands_mean"], atol=1e-6)
    betas = torch.zeros(2, S, requires_grad=True)
    orient = torch.full((2, 3), 0.1, requires_grad=True)
    model(orient, coefficients, betas).joints.sum().backward()
    for tensor in (coefficients, betas, orient):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def test_mirror_is_its_own_inverse(mano_file):
    out = ManoHandModel(mano_file[0])(*zeros())
    twice = mirror(mirror(out))
    torch.testing.assert_close(twice.vertices, out.vertices)
    torch.testing.assert_close(mirror(out).joints[..., 0], -out.joints[..., 0])


def test_bad_files_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv("HANDLABEL_MANO_PATH", raising=False)
    with pytest.raises(ManoFileError, match="HANDLABEL_MANO_PATH"):
        load_mano_arrays(None)
    hostile = tmp_path / "evil.pkl"
    hostile.write_bytes(pickle.dumps({"v_template": types.SimpleNamespace()}, protocol=2))
    with pytest.raises(ManoFileError, match=r"evil\.pkl.*unexpected class"):
        load_mano_arrays(hostile)
    partial = tmp_path / "partial.pkl"
    partial.write_bytes(pickle.dumps({"v_template": np.zeros((V, 3))}, protocol=2))
    with pytest.raises(ManoFileError, match="missing"):
        load_mano_arrays(partial)
