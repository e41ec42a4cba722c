"""Assign detected hands to stable left/right slots over time.

Per frame, each hand goes to the slot that best explains both its handedness label (the
detector's belief, as -log p) and its overlap with the boxes the slots held in the previous
frames (leaving a box it overlaps costs the overlap). An unsure label that flickers on a hand
that has not moved therefore keeps its slot, while a confident label wins its slot.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .detectors.schema import HandDetection

SLOT_SIDES = ("left", "right")  # slot i holds the hand the tracker calls SLOT_SIDES[i]
N_SLOTS = len(SLOT_SIDES)  # hands per frame: every per-frame array's slot axis
_EPS = 1e-3


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = np.maximum(a[:2], b[:2])
    x1, y1 = np.minimum(a[2:], b[2:])
    inter = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class SlotTracker:
    """Stateful over one clip: call :meth:`assign` frame by frame."""

    overlap_weight: float = 2.0  # cost of leaving a box that overlapped fully, in log-odds
    memory_frames: int = 5  # how long a slot remembers a box after its hand disappears
    _last_box: dict[int, np.ndarray] = field(default_factory=dict)
    _age: dict[int, int] = field(default_factory=dict)

    def _cost(self, hand: HandDetection, slot: int) -> float:
        p_label = hand.handedness_score
        if hand.handedness != SLOT_SIDES[slot]:
            p_label = 1 - p_label
        cost = -math.log(min(max(p_label, _EPS), 1 - _EPS))
        for remembered, box in self._last_box.items():
            overlap = box_iou(hand.box, box)
            # staying costs what the hand moved away; switching costs the track it leaves
            cost += self.overlap_weight * ((1.0 - overlap) if remembered == slot else overlap)
        return cost

    def assign(self, hands: list[HandDetection]) -> list[HandDetection | None]:
        """[left hand or None, right hand or None] for this frame."""
        hands = hands[: N_SLOTS]
        best, best_cost = (None, None), math.inf
        for slots in itertools.permutations(range(N_SLOTS), len(hands)):
            cost = sum(self._cost(h, s) for h, s in zip(hands, slots, strict=True))
            if cost < best_cost:
                best_cost = cost
                best = tuple(hands[slots.index(s)] if s in slots else None for s in range(N_SLOTS))
        self._remember(best)
        return list(best)

    def _remember(self, assigned) -> None:
        for slot, hand in enumerate(assigned):
            if hand is not None:
                self._last_box[slot], self._age[slot] = hand.box, 0
            elif slot in self._age:
                self._age[slot] += 1
                if self._age[slot] > self.memory_frames:
                    self._last_box.pop(slot, None)
                    self._age.pop(slot)
