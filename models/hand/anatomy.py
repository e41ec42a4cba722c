"""The embedded default hand's skeleton: an adult right hand of realistic proportions.

Segment lengths are fractions of hand length (wrist crease to middle fingertip) after
Buchholz, Armstrong & Goldstein (1992), "Anthropometric data for describing the kinematics of
the human hand", Ergonomics 35(3); hand length 18.9 cm is the mean of adult men and women
in common anthropometric surveys. Radii are the half-breadths of the fingers at each joint,
from the same sources' order of magnitude (index proximal phalanx about 2 cm wide).

Frame: wrist at the origin, fingers along +y, thumb towards +x, palm facing +z; metres.
Joints in MANO's skeleton order: 0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring,
13-15 thumb (CMC, MCP, IP); fingertips are extra points 16-20 (thumb, index, middle, ring,
pinky).
"""

from __future__ import annotations

import numpy as np

HAND_LENGTH = 0.189
# metacarpal, proximal, middle, distal (thumb: metacarpal, proximal, distal), x hand length
SEGMENTS = {
    "index": (0.374, 0.265, 0.143, 0.097),
    "middle": (0.373, 0.277, 0.170, 0.108),
    "ring": (0.336, 0.259, 0.165, 0.107),
    "pinky": (0.295, 0.206, 0.117, 0.093),
    "thumb": (0.251, 0.196, 0.158),
}
# lateral position of the metacarpal heads (m) and finger splay from +y (degrees)
KNUCKLE_X = {"index": 0.023, "middle": 0.001, "ring": -0.019, "pinky": -0.036}
SPLAY_DEG = {"index": 5.0, "middle": 0.0, "ring": -6.0, "pinky": -13.0}
# finger radius at MCP, PIP, DIP, tip (m)
RADII = {
    "index": (0.0105, 0.0092, 0.0080, 0.0068),
    "middle": (0.0108, 0.0095, 0.0083, 0.0070),
    "ring": (0.0102, 0.0089, 0.0078, 0.0066),
    "pinky": (0.0090, 0.0078, 0.0069, 0.0060),
    "thumb": (0.0150, 0.0118, 0.0100, 0.0085),  # CMC, MCP, IP, tip
}
MANO_FINGER_ORDER = ("index", "middle", "pinky", "ring", "thumb")
PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
FIRST_JOINT = {name: 1 + 3 * i for i, name in enumerate(MANO_FINGER_ORDER)}
TIP_INDEX = {"thumb": 16, "index": 17, "middle": 18, "ring": 19, "pinky": 20}


def _chain(start: np.ndarray, direction: np.ndarray, lengths) -> list[np.ndarray]:
    direction = direction / np.linalg.norm(direction)
    points = [start]
    for length in lengths:
        points.append(points[-1] + direction * length * HAND_LENGTH)
    return points


def rest_skeleton() -> np.ndarray:
    """(21, 3) joints of the open, flat rest pose: 16 MANO-order joints, then 5 tips."""
    joints = np.zeros((21, 3))
    for name in ("index", "middle", "ring", "pinky"):
        metacarpal, *phalanges = SEGMENTS[name]
        x = KNUCKLE_X[name]
        knuckle = np.array([x, np.sqrt((metacarpal * HAND_LENGTH) ** 2 - x**2), 0.0])
        splay = np.radians(SPLAY_DEG[name])
        points = _chain(knuckle, np.array([np.sin(splay), np.cos(splay), 0.0]), phalanges)
        first = FIRST_JOINT[name]
        joints[first : first + 3] = points[:3]
        joints[TIP_INDEX[name]] = points[3]
    # thumb: CMC on the radial side of the wrist, pointing out at 40 degrees, towards the palm
    cmc = np.array([0.021, 0.026, 0.004])
    direction = np.array([np.sin(np.radians(40)), np.cos(np.radians(40)), 0.35])
    points = _chain(cmc, direction, SEGMENTS["thumb"])
    joints[13:16] = points[:3]
    joints[TIP_INDEX["thumb"]] = points[3]
    return joints


def bones() -> list[tuple[int, int]]:
    """(joint, distal end) of each movable segment: the joint whose rotation moves it."""
    result = []
    for name in MANO_FINGER_ORDER:
        first = FIRST_JOINT[name]
        result += [(first, first + 1), (first + 1, first + 2), (first + 2, TIP_INDEX[name])]
    return result


# Direction a flexing bone moves towards: the palm normal for the fingers; across the palm,
# towards the little finger and out of the palm plane, for the thumb.
PALMAR = np.array([0.0, 0.0, 1.0])
THUMB_PALMAR = np.array([-1.0, -0.2, 0.55]) / np.linalg.norm([-1.0, -0.2, 0.55])


def flexion_axes() -> np.ndarray:
    """(16, 3) unit axis per joint (rest frame): a positive rotation about it flexes the joint.

    Row 0 (the wrist) is zero: the global rotation has no flexion axis.
    """
    joints = rest_skeleton()
    axes = np.zeros((16, 3))
    for joint, end in bones():
        direction = joints[end] - joints[joint]
        palmar = THUMB_PALMAR if joint >= 13 else PALMAR
        axis = np.cross(direction, palmar)
        axes[joint] = axis / np.linalg.norm(axis)
    return axes
