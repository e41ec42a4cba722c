"""Build the embedded default hand model (models/hand/assets/default_hand.npz).

Written by this project, from the skeleton and radii in models/hand/anatomy.py; no scan or
third-party mesh is used. Surface: a smooth union of round cones (fingers, palm, thenar,
wrist) turned into a mesh by marching cubes, decimated to about 800 vertices and smoothed.
Skinning: soft assignment of each vertex to its nearest bones. Shape space: ten linear
coefficients (below) built on the fixed topology.

    .venv/bin/python scripts/build_default_hand.py      # needs scikit-image, fast-simplification
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import fast_simplification
import numpy as np
import trimesh
from skimage.measure import marching_cubes

from handlabel.models.hand.anatomy import (
    FIRST_JOINT,
    MANO_FINGER_ORDER,
    RADII,
    TIP_INDEX,
    bones,
    rest_skeleton,
)

OUTPUT = Path(__file__).resolve().parents[1] / "models" / "hand" / "assets" / "default_hand.npz"
VOXEL = 0.0012
BLEND = 0.006  # smooth-union width (m)
TARGET_VERTICES = 800
SKIN_TEMPERATURE = 0.0025  # m: how far weights blend across a bone boundary


def round_cone(p: np.ndarray, a, b, r1: float, r2: float) -> np.ndarray:
    """Signed distance to a cone with spherical caps of radii r1 at a and r2 at b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ba = b - a
    l2 = ba @ ba
    rr = r1 - r2
    a2 = l2 - rr * rr
    pa = p - a
    y = pa @ ba
    z = y - l2
    x2 = np.sum((pa * l2 - y[:, None] * ba) ** 2, axis=1)
    y2, z2 = y * y * l2, z * z * l2
    k = np.sign(rr) * rr * rr * x2
    body = (np.sqrt(np.maximum(x2 * a2 / l2, 0)) + y * rr) / l2 - r1
    cap_b = np.sqrt(x2 + z2) / l2 - r2
    cap_a = np.sqrt(x2 + y2) / l2 - r1
    near_a = np.where(np.sign(y) * a2 * y2 < k, cap_a, body)
    return np.where(np.sign(z) * a2 * z2 > k, cap_b, near_a)


def smooth_union(a: np.ndarray, b: np.ndarray, k: float = BLEND) -> np.ndarray:
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k / 4.0


def hand_sdf(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
    flat = points * np.array([1.0, 1.0, 1.55])  # palm and wrist are flatter than round
    sdf = round_cone(flat, [0, -0.045, 0], [0, 0.012, 0], 0.024, 0.027)  # wrist
    for name in ("index", "middle", "ring", "pinky"):  # palm as a fan of metacarpals
        knuckle = joints[FIRST_JOINT[name]]
        sdf = smooth_union(sdf, round_cone(flat, [knuckle[0] * 0.45, 0.012, 0], knuckle, 0.020,
                                           RADII[name][0] * 1.25), 0.012)
    sdf = smooth_union(sdf, round_cone(flat, joints[1], joints[7], 0.0135, 0.012), 0.01)
    thumb_cmc, thumb_mcp = joints[13], joints[14]
    sdf = smooth_union(sdf, round_cone(points, [0.008, 0.012, 0.006], (thumb_cmc + thumb_mcp) / 2,
                                       0.017, 0.015), 0.01)  # thenar eminence
    for name in MANO_FINGER_ORDER:
        first = FIRST_JOINT[name]
        chain = [joints[first], joints[first + 1], joints[first + 2], joints[TIP_INDEX[name]]]
        radii = RADII[name] if name != "thumb" else (*RADII[name][1:], RADII[name][3] * 0.95)
        for (a, b), (r1, r2) in zip(pairwise(chain), pairwise(radii), strict=True):
            sdf = smooth_union(sdf, round_cone(points, a, b, r1, r2), BLEND * 0.5)
    return sdf


def surface(joints: np.ndarray) -> trimesh.Trimesh:
    low, high = joints.min(0) - 0.035, joints.max(0) + 0.035
    low[1] = -0.085
    axes = [np.arange(lo, hi, VOXEL) for lo, hi in zip(low, high, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    values = hand_sdf(grid, joints).reshape(len(axes[0]), len(axes[1]), len(axes[2]))
    vertices, faces, _, _ = marching_cubes(values, 0.0, spacing=(VOXEL,) * 3)
    vertices += low
    ratio = 1.0 - TARGET_VERTICES / len(vertices)
    vertices, faces = fast_simplification.simplify(vertices, faces, target_reduction=ratio)
    mesh = trimesh.Trimesh(vertices, faces, process=True)
    trimesh.smoothing.filter_taubin(mesh, iterations=25)
    mesh.fix_normals()
    return mesh


def segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray):
    ab = b - a
    t = np.clip((points - a) @ ab / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1), t


def skinning(vertices: np.ndarray, joints: np.ndarray):
    """(V, 16) weights and, per vertex, the position t in [0, 1] along each bone."""
    n = len(vertices)
    distance = np.full((n, 16), np.inf)
    along = np.zeros((n, 16))
    # palm and wrist belong to the root: distance to the wrist-to-knuckle fan
    for knuckle in (1, 4, 7, 10):
        d, _ = segment_distance(vertices, np.array([0, -0.05, 0]), joints[knuckle])
        distance[:, 0] = np.minimum(distance[:, 0], d + 0.004)
    for joint, end in bones():
        distance[:, joint], along[:, joint] = segment_distance(vertices, joints[joint],
                                                               joints[end])
    # a finger bone's joint owns only what lies beyond that joint
    for joint, end in bones():
        behind = (vertices - joints[joint]) @ (joints[end] - joints[joint]) < -0.002
        distance[behind, joint] += 0.02
    weights = np.exp(-(distance - distance.min(1, keepdims=True)) / SKIN_TEMPERATURE)
    weights[weights < 1e-3] = 0.0
    return weights / weights.sum(1, keepdims=True), along


SHAPE_NAMES = ("scale", "finger_length", "palm_width", "palm_length", "finger_thickness",
               "palm_thickness", "thumb_length", "index_vs_ring", "pinky_length", "fingertip_size")


def joint_shapedirs(joints: np.ndarray) -> np.ndarray:
    """(21, 3, S) joint displacement per unit of each shape coefficient."""
    dirs = np.zeros((21, 3, len(SHAPE_NAMES)))
    dirs[:, :, 0] = 0.08 * joints

    def lengthen(column: int, names, fraction: float):
        """Every bone of the fingers ``names`` longer by ``fraction``; children follow."""
        for name in names:
            first = FIRST_JOINT[name]
            shift = np.zeros(3)
            for parent, child in pairwise([first, first + 1, first + 2, TIP_INDEX[name]]):
                shift = shift + fraction * (joints[child] - joints[parent])
                dirs[child, :, column] += shift

    lengthen(1, ("index", "middle", "ring", "pinky"), 0.06)
    lengthen(6, ("thumb",), 0.08)
    lengthen(7, ("index",), 0.05)
    lengthen(7, ("ring",), -0.05)
    lengthen(8, ("pinky",), 0.08)
    for name in ("index", "middle", "ring", "pinky"):  # palm width / length move the fingers
        first = FIRST_JOINT[name]
        members = [first, first + 1, first + 2, TIP_INDEX[name]]
        knuckle = joints[first]
        dirs[members, 0, 2] += 0.07 * knuckle[0]
        dirs[members, 1, 3] += 0.07 * knuckle[1]
    return dirs


def vertex_shapedirs(vertices, weights, along, joints, jdirs) -> np.ndarray:
    """(V, 3, S): vertices follow their bones' joints (stretching along a bone) or scale."""
    dirs = np.zeros((len(vertices), 3, len(SHAPE_NAMES)))
    ends = dict(bones())
    for column in range(len(SHAPE_NAMES)):
        for joint in range(1, 16):
            end = ends[joint]
            moved = jdirs[joint, :, column] + along[:, joint, None] * (
                jdirs[end, :, column] - jdirs[joint, :, column])
            dirs[:, :, column] += weights[:, joint, None] * moved
    root = weights[:, 0, None]
    dirs[:, :, 0] = 0.08 * vertices
    dirs[:, 0, 2] += root[:, 0] * 0.07 * vertices[:, 0]
    dirs[:, 1, 3] += root[:, 0] * 0.07 * np.maximum(vertices[:, 1], 0)
    dirs[:, 2, 5] += root[:, 0] * 0.10 * vertices[:, 2]
    for joint, end in bones():  # thickness: radial growth around the finger bones
        axis = joints[end] - joints[joint]
        foot = joints[joint] + along[:, joint, None] * axis
        radial = vertices - foot
        dirs[:, :, 4] += weights[:, joint, None] * 0.10 * radial
        if end >= 16:
            dirs[:, :, 9] += weights[:, joint, None] * 0.10 * radial
    return dirs


def fingertip_vertices(vertices: np.ndarray, joints: np.ndarray) -> list[int]:
    """The vertex at the very end of each finger (thumb, index, middle, ring, pinky)."""
    result = []
    for name in ("thumb", "index", "middle", "ring", "pinky"):
        tip = joints[TIP_INDEX[name]]
        direction = tip - joints[FIRST_JOINT[name] + 2]
        direction /= np.linalg.norm(direction)
        near = np.linalg.norm(vertices - tip, axis=1) < 0.015
        score = np.where(near, (vertices - tip) @ direction, -np.inf)
        result.append(int(np.argmax(score)))
    return result


def build() -> dict[str, np.ndarray]:
    joints = rest_skeleton()
    mesh = surface(joints)
    vertices = np.asarray(mesh.vertices)
    weights, along = skinning(vertices, joints)
    jdirs = joint_shapedirs(joints)
    return {
        "v_template": vertices.astype(np.float32),
        "faces": np.asarray(mesh.faces, dtype=np.int32),
        "weights": weights.astype(np.float32),
        "joints": joints[:16].astype(np.float32),
        "joint_shapedirs": jdirs[:16].astype(np.float32),
        "shapedirs": vertex_shapedirs(vertices, weights, along, joints, jdirs).astype(np.float32),
        "tip_vertices": np.array(fingertip_vertices(vertices, joints), dtype=np.int64),
        "shape_names": np.array(SHAPE_NAMES),
    }


if __name__ == "__main__":
    data = build()
    mesh = trimesh.Trimesh(data["v_template"], data["faces"], process=False)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUTPUT, **data)
    print(f"{OUTPUT}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, "
          f"watertight {mesh.is_watertight}, volume {mesh.volume * 1e6:.0f} cm3, "
          f"{OUTPUT.stat().st_size / 1024:.0f} KiB")
