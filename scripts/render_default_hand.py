"""Render the default hand in four poses (open, fist, pointing, pinch), palm and back views.

    .venv/bin/python scripts/render_default_hand.py docs/default_hand_poses.png
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from PIL import Image

from handlabel.models.hand.anatomy import FIRST_JOINT, flexion_axes
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.render import Light
from handlabel.models.render.deodr_backend import DeodrRenderer

SIZE = 320
SKIN = (0.86, 0.64, 0.52)


AXES = flexion_axes()


def finger_pose(angles: dict[str, tuple[float, float, float]]) -> np.ndarray:
    """(15, 3) axis-angle from per-finger flexion (degrees) of its three joints."""
    pose = np.zeros((16, 3))
    for name, degrees in angles.items():
        first = FIRST_JOINT[name]
        for offset, angle in enumerate(degrees):
            pose[first + offset] = AXES[first + offset] * np.radians(angle)
    return pose[1:]


CURLED = (80.0, 95.0, 60.0)


def pinch_pose() -> np.ndarray:
    """Index half bent; thumb angles chosen so that the two fingertips meet."""
    model = DefaultHandModel()
    index = (35.0, 40.0, 25.0)
    best, best_distance = None, np.inf
    for cmc in range(0, 70, 5):
        for mcp in range(0, 50, 10):
            for ip in range(0, 40, 10):
                pose = finger_pose({"index": index, "middle": (25.0, 30.0, 15.0),
                                    "ring": (30.0, 35.0, 15.0), "pinky": (35.0, 40.0, 20.0),
                                    "thumb": (float(cmc), float(mcp), float(ip))})
                joints = model(torch.zeros(1, 3), torch.tensor(pose, dtype=torch.float32)[None],
                               torch.zeros(1, model.n_shape)).joints[0]
                distance = torch.linalg.norm(joints[4] - joints[8]).item()
                if distance < best_distance:
                    best, best_distance = pose, distance
    return best


POSES = {
    "open": finger_pose({}),
    "fist": finger_pose({"index": CURLED, "middle": CURLED, "ring": CURLED, "pinky": CURLED,
                         "thumb": (45.0, 35.0, 40.0)}),
    "pointing": finger_pose({"middle": CURLED, "ring": CURLED, "pinky": CURLED,
                             "thumb": (45.0, 35.0, 30.0)}),
    "pinch": pinch_pose(),
}
VIEWS = {  # rotation from the hand frame to the camera frame
    "palm": np.diag([1.0, -1.0, -1.0]),
    "back": np.diag([-1.0, -1.0, 1.0]),
    "thumb side": np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]),
}


def render_tiles() -> np.ndarray:
    model = DefaultHandModel()
    renderer = DeodrRenderer()
    focal = SIZE * 1.6
    K = torch.tensor([[[focal, 0, (SIZE - 1) / 2], [0, focal, (SIZE - 1) / 2], [0, 0, 1.0]]])
    light = Light(torch.full((1, 3), 0.45), torch.full((1, 3), 0.65),
                  torch.nn.functional.normalize(torch.tensor([[0.3, 0.4, 1.0]]), dim=-1))
    rows = []
    for view in VIEWS.values():
        tiles = []
        for pose in POSES.values():
            out = model(torch.zeros(1, 3), torch.tensor(pose, dtype=torch.float32)[None],
                        torch.zeros(1, model.n_shape))
            vertices = out.vertices[0].double() @ torch.tensor(view).T
            vertices = vertices - vertices.mean(0) + torch.tensor([0.0, 0.0, 0.42])
            colors = torch.tensor(SKIN, dtype=torch.float64).expand_as(vertices)[None]
            image = renderer.render(vertices[None], model.faces, colors, K, SIZE, SIZE, light)
            rgb = image.image[0] + (1 - image.silhouette[0, ..., None]) * 0.93
            tiles.append((rgb.detach().clamp(0, 1).numpy() * 255).astype(np.uint8))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


if __name__ == "__main__":
    Image.fromarray(render_tiles()).save(sys.argv[1] if len(sys.argv) > 1 else "hand.png")
