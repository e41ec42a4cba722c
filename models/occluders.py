"""Objects that pass over a hand: real-texture cut-outs slid across frames, with the share
of the hand's joints they cover, for measuring the labels under occlusion
(``bench/occlusion.py``).

An occluder is a patch of a real frame (a mug, a cup, foliage: never a flat box) with its
alpha: the object's own outline where its colour sets it apart, an ellipse otherwise. A
pass moves one occluder in a straight line across a hand, from clear of it on one side to
clear of it on the other, over a span of frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np


@dataclass(frozen=True)
class Occluder:
    """A cut-out: ``rgb`` (h, w, 3) uint8 and ``alpha`` (h, w) float32 in [0, 1]."""

    name: str
    rgb: np.ndarray
    alpha: np.ndarray

    def resized(self, side: float) -> Occluder:
        """The occluder scaled so that its longer side is ``side`` pixels."""
        h, w = self.alpha.shape
        f = side / max(h, w)
        size = (max(2, round(w * f)), max(2, round(h * f)))
        return Occluder(self.name, cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA),
                        cv2.resize(self.alpha, size, interpolation=cv2.INTER_LINEAR))


def cut_occluder(name: str, rgb: np.ndarray, box: tuple[int, int, int, int],
                 outline: Literal["ellipse", "red", "blue"]) -> Occluder:
    """The patch ``box`` (x0, y0, x1, y1) of frame ``rgb`` (H, W, 3) with an alpha: an
    ellipse filling the box, or the largest red or blue object in it (HSV thresholds: a
    saturated cup or mug against a table, not skin)."""
    x0, y0, x1, y1 = box
    patch = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    if patch.size == 0:
        raise ValueError(f"{name}: box {box} lies outside the {rgb.shape[1]}x{rgb.shape[0]} frame")
    if outline == "ellipse":
        mask = np.zeros(patch.shape[:2], np.uint8)
        h, w = mask.shape
        cv2.ellipse(mask, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 255, -1)
    else:
        mask = _coloured_object(patch, outline)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (5, 5), 0)
    return Occluder(name, patch, alpha)


def _coloured_object(patch: np.ndarray, colour: str) -> np.ndarray:
    """The largest connected object of ``colour`` in ``patch``, holes filled, uint8 0/255."""
    hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV)
    if colour == "red":  # OpenCV hue 0-180: red wraps around 0
        mask = cv2.inRange(hsv, (0, 140, 60), (6, 255, 255)) | \
            cv2.inRange(hsv, (172, 140, 60), (180, 255, 255))
    else:
        mask = cv2.inRange(hsv, (95, 120, 50), (130, 255, 255))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count < 2:
        raise ValueError(f"no {colour} object in the patch")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = np.where(labels == largest, 255, 0).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return cv2.drawContours(mask, contours, -1, 255, -1)


@dataclass(frozen=True)
class Pass:
    """One occluder moving in a straight line from ``begin`` to ``end`` (frame pixels, its
    centre) over frames ``first`` .. ``first + frames - 1``."""

    occluder: Occluder
    first: int
    frames: int
    begin: np.ndarray  # (2,)
    end: np.ndarray  # (2,)

    def centre(self, frame: int) -> np.ndarray | None:
        """The occluder's centre at ``frame``; None outside the pass."""
        if not self.first <= frame < self.first + self.frames:
            return None
        f = (frame - self.first) / max(self.frames - 1, 1)
        return (1 - f) * self.begin + f * self.end


def plan_pass(rng: np.random.Generator, occluder: Occluder, hand_box: np.ndarray,
              first: int, frames: int, size: tuple[float, float] = (0.6, 1.0)) -> Pass:
    """A pass across the hand whose box is ``hand_box`` (x0, y0, x1, y1): the occluder
    scaled to ``size`` (a range) times the box's longer side, crossing the box near its
    centre in a random direction, clear of the box at both ends."""
    hand_box = np.asarray(hand_box, dtype=float)
    side = float((hand_box[2:] - hand_box[:2]).max())
    sized = occluder.resized(side * rng.uniform(*size))
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    through = (hand_box[:2] + hand_box[2:]) / 2 + rng.uniform(-0.15, 0.15, 2) * side
    reach = 0.5 * side * np.sqrt(2) + 0.5 * max(sized.alpha.shape)  # clear of box and object
    return Pass(sized, first, frames, through - reach * direction, through + reach * direction)


def composite(frame: np.ndarray, occluder: Occluder, centre: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with ``occluder`` pasted, centred at ``centre`` (x, y)."""
    out = frame.copy()
    window = _window(frame.shape[:2], occluder.alpha.shape, centre)
    if window is None:
        return out
    (fy, fx), (oy, ox) = window
    a = occluder.alpha[oy, ox, None]
    out[fy, fx] = (a * occluder.rgb[oy, ox] + (1 - a) * frame[fy, fx]).round().astype(np.uint8)
    return out


def covered(points: np.ndarray, occluder: Occluder, centre: np.ndarray | None) -> np.ndarray:
    """(N,) bool: which of ``points`` (N, 2) lie under the occluder (alpha > 0.5) when it
    is centred at ``centre`` (None: nothing covered).

    >>> o = Occluder("square", np.zeros((10, 10, 3), np.uint8), np.ones((10, 10), np.float32))
    >>> covered(np.array([[50.0, 50.0], [54.0, 46.0], [60.0, 50.0]]), o, np.array([50, 50]))
    array([ True,  True, False])
    """
    if centre is None:
        return np.zeros(len(points), bool)
    h, w = occluder.alpha.shape
    corner = np.floor(np.asarray(centre, float) - [w / 2, h / 2])  # as composite() places it
    local = (np.floor(points) - corner).astype(int)
    inside = (local >= 0).all(1) & (local[:, 0] < w) & (local[:, 1] < h)
    out = np.zeros(len(points), bool)
    out[inside] = occluder.alpha[local[inside, 1], local[inside, 0]] > 0.5
    return out


def _window(frame_hw: tuple[int, int], occluder_hw: tuple[int, int], centre: np.ndarray):
    """The overlapping slices of frame and occluder (None: no overlap)."""
    (H, W), (h, w) = frame_hw, occluder_hw
    x0, y0 = int(np.floor(centre[0] - w / 2)), int(np.floor(centre[1] - h / 2))
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    return ((slice(fy0, fy1), slice(fx0, fx1)),
            (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)))
