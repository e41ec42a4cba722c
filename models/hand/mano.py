"""MANO for users who own ``MANO_RIGHT.pkl`` (it may not be redistributed: nothing of it is
committed). Path from the caller, else ``$HANDLABEL_MANO_PATH``.

The file pickles chumpy arrays and a scipy sparse matrix. It is read with a restricted
unpickler that maps those classes to small stand-ins holding their pickled state, so neither
chumpy (unmaintained, broken on current numpy) nor scipy is needed, and no other class can be
instantiated from the file.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from .base import HandModel, HandOutput
from .lbs import blend_skinning, personalise_rest

MANO_PATH_ENV = "HANDLABEL_MANO_PATH"
FINGERTIP_VERTICES = (744, 320, 443, 555, 672)  # thumb, index, middle, ring, pinky
# MANO skeleton order -> file order (METHOD.md section 4); 16..20 are the fingertips above.
TO_FILE_ORDER = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f",
                 "kintree_table", "hands_components", "hands_mean")


class ManoFileError(ValueError):
    """A MANO file that is missing or not of MANO's structure; the message names it."""


class _PickledState:
    """Stand-in for a chumpy or scipy.sparse object: keeps the state it was pickled with."""

    def __setstate__(self, state):
        self.state = state[0] if isinstance(state, tuple) else state


# What a MANO pickle may construct besides the stand-ins (Python 2 and 3 spellings).
_ALLOWED_CLASSES = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
})


class _ManoUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("chumpy"):
            return _PickledState
        if module.startswith("scipy.sparse") and name.endswith("_matrix"):
            return _PickledState
        if (module, name) in _ALLOWED_CLASSES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in a MANO file")


def _dense(value, key: str, path: Path) -> np.ndarray:
    if isinstance(value, _PickledState):
        state = value.state
        if "x" in state:  # a plain chumpy array
            return np.asarray(state["x"])
        if {"data", "indices", "indptr"} <= set(state):  # a CSC / CSR sparse matrix
            shape = state.get("_shape") or state.get("shape")
            dense = np.zeros(shape)
            columns = "csc" in str(state.get("format", "csc"))
            starts = state["indptr"]
            for outer in range(len(starts) - 1):
                rows = state["indices"][starts[outer] : starts[outer + 1]]
                values = state["data"][starts[outer] : starts[outer + 1]]
                if columns:
                    dense[rows, outer] = values
                else:
                    dense[outer, rows] = values
            return dense
        raise ManoFileError(f"{path}: {key} is an object of unknown structure")
    return np.asarray(value)


def load_mano_arrays(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The arrays of a MANO pickle, as plain numpy."""
    path = Path(path or os.environ.get(MANO_PATH_ENV) or "")
    if not path.is_file():
        raise ManoFileError(f"{path or '(no path)'}: MANO file not found; give its path or set "
                            f"${MANO_PATH_ENV} (MANO_RIGHT.pkl from mano.is.tue.mpg.de)")
    with path.open("rb") as handle:
        try:
            data = _ManoUnpickler(handle, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, AttributeError) as exc:
            raise ManoFileError(f"{path}: not a readable MANO pickle ({exc})") from exc
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ManoFileError(f"{path}: not a MANO file, missing {missing}")
    return {key: _dense(data[key], key, path) for key in REQUIRED_KEYS}


class ManoHandModel(HandModel):
    """MANO (right hand) with linear blend skinning; optional PCA pose space."""

    def __init__(self, path: str | Path | None = None, n_pca: int | None = None,
                 flat_hand_mean: bool = False):
        super().__init__()
        arrays = load_mano_arrays(path)
        as_tensor = lambda key: torch.as_tensor(arrays[key], dtype=torch.float32)  # noqa: E731
        self.register_buffer("v_template", as_tensor("v_template"))
        self.register_buffer("shapedirs", as_tensor("shapedirs"))
        posedirs = as_tensor("posedirs")  # (V, 3, 135)
        self.register_buffer("posedirs", posedirs.reshape(-1, posedirs.shape[-1]).T.contiguous())
        self.register_buffer("j_regressor", as_tensor("J_regressor"))
        self.register_buffer("weights", as_tensor("weights"))
        self.register_buffer("faces", torch.as_tensor(arrays["f"].astype(np.int64)))
        self.register_buffer("components", as_tensor("hands_components"))
        mean = torch.zeros(45) if flat_hand_mean else as_tensor("hands_mean")
        self.register_buffer("pose_mean", mean)
        parents = arrays["kintree_table"][0].astype(np.int64)
        self.parents = [-1] + [int(p) for p in parents[1:]]
        self.n_shape = int(self.shapedirs.shape[-1])
        self.n_pca = n_pca

    def pose_from_pca(self, coefficients: torch.Tensor) -> torch.Tensor:
        """(B, n) PCA coefficients -> (B, 15, 3) axis-angle, around the mean pose."""
        n = coefficients.shape[-1]
        return (coefficients @ self.components[:n] + self.pose_mean).reshape(-1, 15, 3)

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor,
                betas: torch.Tensor, joint_offsets: torch.Tensor | None = None) -> HandOutput:
        """``hand_pose``: (B, 15, 3) axis-angle, or (B, n_pca) coefficients with ``n_pca``."""
        if self.n_pca is not None:
            hand_pose = self.pose_from_pca(hand_pose)
        pose = torch.cat([global_orient[:, None], hand_pose.reshape(-1, 15, 3)], dim=1)
        v_shaped = self.v_template + torch.einsum("vcs,bs->bvc", self.shapedirs, betas)
        joints = torch.einsum("kv,bvc->bkc", self.j_regressor, v_shaped)
        v_shaped, joints = personalise_rest(v_shaped, joints, self.weights, joint_offsets)
        vertices, skeleton = blend_skinning(v_shaped, joints, self.posedirs, self.weights,
                                            self.parents, pose)
        tips = vertices[:, list(FINGERTIP_VERTICES)]
        joints = torch.cat([skeleton, tips], dim=1)[:, list(TO_FILE_ORDER)]
        return HandOutput(vertices, joints)
