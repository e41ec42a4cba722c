"""When a clip's hand needs its test-time views again, and what it carries between them.

The views' agreement (per-joint spread, in hand sizes) changes slowly while a hand moves
smoothly, so on video it is measured on some frames and carried to the frames between: a
hand gets its views when it is new (no hand of the previous frame near it), when its views
are ``every`` frames old, or when its joints leave their constant-velocity path by more than
``jump`` hand sizes (the temporal agreement is low: a pose change or a detector slip, exactly
where a fresh measurement matters). Written here because no detection library schedules
test-time augmentation over a clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAME_HAND = 0.5  # a hand of the previous frame within this many hand sizes is the same hand


@dataclass
class ViewMemory:
    """What one hand's last views measured, and where its joints were since."""

    spread: np.ndarray  # (21,) 2D spread across views, hand sizes
    spread_3d: np.ndarray  # (21,) 3D spread across views, 3D hand sizes
    age: int  # frames since the views were run
    keypoints: np.ndarray  # (21, 2) this frame's keypoints, pixels
    previous: np.ndarray | None  # (21, 2) the frame before's, pixels


class ViewGate:
    """Per clip: decide, hand by hand and frame by frame, whether to run the views.

    Args:
        every: the most frames a measurement is carried (1: views on every frame).
        jump: the largest departure from the joints' constant-velocity path, in hand sizes,
            that still carries the last measurement.
    """

    def __init__(self, every: int, jump: float):
        if every < 1:
            raise ValueError(f"every must be >= 1 frame, got {every}")
        self.every, self.jump = every, jump
        self._last: list[ViewMemory] = []
        self._now: list[ViewMemory] = []

    def carried(self, keypoints: np.ndarray, size: float) -> ViewMemory | None:
        """The memory this frame's hand (``keypoints`` (21, 2), ``size`` px) may carry, or
        None when its views must run."""
        if self.every == 1 or not self._last:
            return None
        distances = [np.linalg.norm(m.keypoints - keypoints, axis=1).mean() / size
                     for m in self._last]
        best = int(np.argmin(distances))
        memory = self._last[best]
        if distances[best] > SAME_HAND or memory.age + 1 >= self.every:
            return None
        if temporal_departure(memory, keypoints, size).max() > self.jump:
            return None
        return memory

    def remember(self, keypoints: np.ndarray, spread: np.ndarray, spread_3d: np.ndarray,
                 carried: ViewMemory | None) -> None:
        """Record this frame's hand: fresh views (``carried`` None) or a carried memory."""
        if carried is None:
            self._now.append(ViewMemory(spread, spread_3d, 0, keypoints, None))
        else:
            self._now.append(ViewMemory(carried.spread, carried.spread_3d, carried.age + 1,
                                        keypoints, carried.keypoints))

    def next_frame(self) -> None:
        """This frame's hands become the ones the next frame is compared with."""
        self._last, self._now = self._now, []


def temporal_departure(memory: ViewMemory, keypoints: np.ndarray, size: float) -> np.ndarray:
    """(21,) each joint's distance, in hand sizes, from where its last two positions put it
    (constant velocity), or from its last position when only one is known.

    >>> m = ViewMemory(np.zeros(21), np.zeros(21), 0, np.full((21, 2), 10.0),
    ...                np.full((21, 2), 8.0))
    >>> float(temporal_departure(m, np.full((21, 2), 12.0), 100.0).max())
    0.0
    """
    predicted = memory.keypoints if memory.previous is None else \
        2 * memory.keypoints - memory.previous
    return np.linalg.norm(keypoints - predicted, axis=1) / size
