"""The embedded default hand model: openly licensed, written by this project, MANO-compatible
interface (same 16-joint skeleton order, 21 output joints in file order, right hand).

About 800 vertices on a closed surface, smooth skinning weights, and ten linear shape
coefficients (``SHAPE_NAMES``). Built by ``scripts/build_default_hand.py`` from
``anatomy.py``; the arrays ship as ``assets/default_hand.npz``.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch

from .anatomy import PARENTS
from .base import HandModel, HandOutput
from .lbs import blend_skinning, personalise_rest
from .mano import TO_FILE_ORDER

ASSET = "default_hand.npz"


def load_default_arrays() -> dict[str, np.ndarray]:
    with resources.files("handlabel.models.hand").joinpath("assets", ASSET).open("rb") as f:
        return dict(np.load(f, allow_pickle=False))


class DefaultHandModel(HandModel):
    def __init__(self):
        super().__init__()
        arrays = load_default_arrays()
        for key in ("v_template", "shapedirs", "weights", "joints", "joint_shapedirs"):
            self.register_buffer(key, torch.as_tensor(arrays[key], dtype=torch.float32))
        self.register_buffer("faces", torch.as_tensor(arrays["faces"], dtype=torch.long))
        self.register_buffer("tip_vertices", torch.as_tensor(arrays["tip_vertices"]))
        self.shape_names = tuple(str(n) for n in arrays["shape_names"])
        self.n_shape = len(self.shape_names)
        self.parents = PARENTS

    def forward(self, global_orient: torch.Tensor, hand_pose: torch.Tensor,
                betas: torch.Tensor, joint_offsets: torch.Tensor | None = None) -> HandOutput:
        vertices, skeleton = self._skin(global_orient, hand_pose, betas, slice(None),
                                        joint_offsets)
        tips = vertices[:, self.tip_vertices]
        return HandOutput(vertices, torch.cat([skeleton, tips], dim=1)[:, list(TO_FILE_ORDER)])

    def joints_only(self, global_orient: torch.Tensor, hand_pose: torch.Tensor,
                    betas: torch.Tensor, joint_offsets: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """The joints with only the five fingertip vertices skinned (no pose blend shapes
        here, so a vertex depends on nothing but its own weights): the same values as
        ``forward``, for a fraction of the cost."""
        tips, skeleton = self._skin(global_orient, hand_pose, betas, self.tip_vertices,
                                    joint_offsets)
        return torch.cat([skeleton, tips], dim=1)[:, list(TO_FILE_ORDER)]

    def _skin(self, global_orient, hand_pose, betas, vertices, joint_offsets=None):
        pose = torch.cat([global_orient[:, None], hand_pose.reshape(-1, 15, 3)], dim=1)
        v_shaped = self.v_template[vertices] + torch.einsum(
            "vcs,bs->bvc", self.shapedirs[vertices], betas)
        joints = self.joints + torch.einsum("kcs,bs->bkc", self.joint_shapedirs, betas)
        v_shaped, joints = personalise_rest(v_shaped, joints, self.weights[vertices],
                                            joint_offsets)
        return blend_skinning(v_shaped, joints, None, self.weights[vertices], self.parents,
                              pose)
