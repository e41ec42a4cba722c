"""The detector output schema: per frame, up to two hands, each with 21 keypoints.

Joint order (METHOD.md section 4): wrist; thumb CMC, MCP, IP, tip; index MCP, PIP, DIP, tip;
middle, ring and pinky likewise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

NUM_JOINTS = 21
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_THUMB_PARTS, _FINGER_PARTS = ("cmc", "mcp", "ip", "tip"), ("mcp", "pip", "dip", "tip")
JOINT_NAMES = (
    "wrist",
    *(f"{finger}_{part}" for finger in FINGERS
      for part in (_THUMB_PARTS if finger == "thumb" else _FINGER_PARTS)),
)
# (parent, child) joint pairs of the 20 bones.
BONES = tuple(
    (0 if k == 0 else 1 + 4 * f + k - 1, 1 + 4 * f + k) for f in range(5) for k in range(4)
)

Side = Literal["left", "right"]


@dataclass
class HandDetection:
    """One detected hand in image pixels."""

    keypoints: np.ndarray  # (21, 2) x, y in pixels of the image given to the detector
    confidence: np.ndarray  # (21,) per-joint confidence in [0, 1]
    handedness: Side
    handedness_score: float  # the detector's belief in ``handedness``, in [0.5, 1]
    score: float  # the hand's presence score in [0, 1]
    extras: dict = field(default_factory=dict)
    # The detector's own 3D joints, where it gives them (MediaPipe's world landmarks): (21, 3)
    # metres in a hand-centred frame whose axes follow the image's (x right, y down, z away
    # from the camera), origin near the hand's centre; not in the camera frame.
    world: np.ndarray | None = None
    world_confidence: np.ndarray | None = None  # (21,) agreement of the 3D across views

    @property
    def box(self) -> np.ndarray:
        """Tight (x0, y0, x1, y1) box around the keypoints."""
        return np.concatenate([self.keypoints.min(0), self.keypoints.max(0)])

    @property
    def size(self) -> float:
        """Hand size in pixels: the longer side of the keypoint box."""
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, y1 - y0, 1.0))


class HandDetector(Protocol):
    """What every backend provides."""

    name: str

    def detect_image(self, rgb: np.ndarray) -> list[HandDetection]:
        """Hands in one (H, W, 3) uint8 RGB image, best first."""
        ...

    def detect_video(
        self, frames: Iterable[np.ndarray], timestamps: Iterable[float]
    ) -> Iterator[list[HandDetection]]:
        """Hands per frame of a clip, in order; may track hands from frame to frame."""
        ...

    def close(self) -> None: ...
