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
    memory_frames: int = 5  # how long a slot's box still draws its hand (assignment)
    search_frames: int = 0  # how long a lost hand is looked for where its track predicts it
    _last_box: dict[int, np.ndarray] = field(default_factory=dict)
    _age: dict[int, int] = field(default_factory=dict)
    _velocity: dict[int, np.ndarray] = field(default_factory=dict)  # box centre, px/frame

    def _cost(self, hand: HandDetection, slot: int) -> float:
        p_label = hand.handedness_score
        if hand.handedness != SLOT_SIDES[slot]:
            p_label = 1 - p_label
        cost = -math.log(min(max(p_label, _EPS), 1 - _EPS))
        for remembered, box in self._last_box.items():
            if self._age[remembered] > self.memory_frames:
                continue
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

    def lost(self) -> dict[int, np.ndarray]:
        """Slots whose hand went missing in the last ``search_frames`` frames, each with the
        box where its track predicts the hand now: the last box moved on at its last
        velocity for at most 3 frames (an occluded hand rarely keeps accelerating)."""
        out = {}
        for slot, age in self._age.items():
            if 0 < age <= self.search_frames:
                shift = self._velocity.get(slot, np.zeros(2)) * min(age, 3)
                out[slot] = self._last_box[slot] + np.tile(shift, 2)
        return out

    def found_again(self, slot: int, hand: HandDetection) -> None:
        """``hand`` was found for a lost ``slot`` (by a search where the track predicted it):
        the slot keeps its track as if the detector had seen it."""
        self._set(slot, hand.box, self._age[slot])

    def _set(self, slot: int, box: np.ndarray, steps: int) -> None:
        """The slot's box now, ``steps`` frames after its last one."""
        if slot in self._last_box:
            centre = lambda b: (b[:2] + b[2:]) / 2  # noqa: E731
            self._velocity[slot] = (centre(box) - centre(self._last_box[slot])) / steps
        self._last_box[slot], self._age[slot] = box, 0

    def _remember(self, assigned) -> None:
        for slot, hand in enumerate(assigned):
            if hand is not None:
                self._set(slot, hand.box, self._age.get(slot, 0) + 1)
            elif slot in self._age:
                self._age[slot] += 1
                if self._age[slot] > max(self.memory_frames, self.search_frames):
                    self._last_box.pop(slot, None)
                    self._age.pop(slot)
                    self._velocity.pop(slot, None)
