"""The labels' self-check without ground truth: hide a few spans of a track's detections,
fit the window around each without them, and measure how well the fit predicts what the
detector saw there.

A hidden span is what an occluder does to a track (the detector sees nothing for a few
tenths of a second inside it), so the error is how good the labels are where the detector
fails, measured on the user's own footage. The hidden detections are the detector's, with
its noise: the error cannot go below the detector's own error, and it is set beside the
simplest prediction there is, each joint moved in a straight line between the detections
either side of the span (``interpolation_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeldOut:
    """One hidden span of a slot's track: frames [hidden_start, hidden_stop) hidden, fitted
    in the window [window_start, window_stop) around them."""

    slot: int
    window_start: int
    window_stop: int
    hidden_start: int
    hidden_stop: int


def held_out_spans(tracks: list[tuple[int, int, int]], present: np.ndarray, fps: float,
                   n_spans: int, span_s: float, context_s: float, seed: int | list[int]
                   ) -> list[HeldOut]:
    """Up to ``n_spans`` spans of ``span_s`` seconds, each inside one track with
    ``context_s`` seconds of it on either side, detected at both ends (so a fit must carry
    the hand across, as across an occluder), their windows not overlapping. Seeded: the
    same store and config hold out the same spans.

    Args:
        tracks: (slot, start, stop) of every track.
        present: (T, slots) detected frames.
        fps: frames per second (spans and context to frames).

    >>> spans = held_out_spans([(1, 0, 100)], np.ones((100, 2), bool), 10.0, 2, 0.5, 1.0, 0)
    >>> [(s.window_stop - s.window_start, s.hidden_stop - s.hidden_start) for s in spans]
    [(25, 5), (25, 5)]
    """
    length, context = max(1, round(span_s * fps)), max(1, round(context_s * fps))
    candidates = []
    for slot, start, stop in tracks:
        for first in range(start + context, stop - context - length + 1):
            last = first + length
            if present[first - 1, slot] and present[last, slot] and \
                    present[first:last, slot].any():
                candidates.append((slot, first))
    rng = np.random.default_rng(seed)
    chosen: list[HeldOut] = []
    for index in rng.permutation(len(candidates)):
        if len(chosen) == n_spans:
            break
        slot, first = candidates[index]
        span = HeldOut(slot, first - context, first + length + context, first, first + length)
        if all(span.slot != c.slot or span.window_stop <= c.window_start
               or c.window_stop <= span.window_start for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: (s.slot, s.window_start))


def hidden_errors(predicted: np.ndarray, detected: np.ndarray, weights: np.ndarray
                  ) -> np.ndarray:
    """(T,) weighted mean distance (pixels) of predicted (T, 21, 2) joints from the hidden
    detections (T, 21, 2), with the weight stage's joint weights (T, 21); NaN where a frame
    has no weighted joint.

    >>> hidden_errors(np.zeros((1, 21, 2)), np.full((1, 21, 2), [3.0, 4.0]), np.ones((1, 21)))
    array([5.])
    """
    distance = np.linalg.norm(predicted - detected, axis=-1)
    usable = np.isfinite(distance) & (weights > 0)
    total = np.where(usable, weights, 0.0).sum(-1)
    summed = np.where(usable, distance * weights, 0.0).sum(-1)
    return np.where(total > 0, summed / np.maximum(total, 1e-12), np.nan)


def interpolation_errors(keypoints: np.ndarray, weights: np.ndarray, times: np.ndarray,
                         span: HeldOut, window_start: int) -> np.ndarray:
    """(hidden frames,) the error of the straight-line prediction: each joint moved in time
    from the detection before the span to the one after it (``keypoints`` (T, 21, 2),
    ``weights`` (T, 21), ``times`` (T,) of the window starting at frame ``window_start``)."""
    before, after = span.hidden_start - 1 - window_start, span.hidden_stop - window_start
    inside = np.arange(span.hidden_start, span.hidden_stop) - window_start
    step = (times[inside] - times[before]) / max(times[after] - times[before], 1e-9)
    predicted = keypoints[before] + step[:, None, None] * (keypoints[after] - keypoints[before])
    return hidden_errors(predicted, keypoints[inside], weights[inside])


@dataclass(frozen=True)
class SelfCheckSummary:
    """A video's self-check: hidden frames measured, and the median error (pixels) of the
    labels' fit and of straight-line interpolation on them."""

    frames: int
    labels_px: float
    interpolation_px: float


def summarise(labels_px: np.ndarray, interpolation_px: np.ndarray) -> SelfCheckSummary:
    """Medians over the frames both measured (any shape; NaN where not measured)."""
    both = np.isfinite(labels_px) & np.isfinite(interpolation_px)
    if not both.any():
        return SelfCheckSummary(0, float("nan"), float("nan"))
    return SelfCheckSummary(int(both.sum()), float(np.median(labels_px[both])),
                            float(np.median(interpolation_px[both])))
