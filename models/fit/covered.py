"""Which detections of a track the fit leaves to the track: those an object covers.

Under an object the detector's whole hand is off, not only the joints the object covers, so a
detection with at least ``reconstruct.fit.covered_share`` of its joints covered (their colour
unlike the hand's, ``models/appearance.py``) is not fitted: the track fills the frame as if
the detector had missed it. An object arrives and leaves over several frames, and the frames
either side of a covered span (or of a span the detector missed) are the detector's worst:
partly covered, already off, and they are the ends the track is carried from. So the rule
has hysteresis, as edge detectors have: next to a covered or missed frame, a lower share
(``covered_edge_share``) is enough, and it spreads along consecutive frames that reach it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def covered_detections(present: np.ndarray, covered_share: np.ndarray, times: np.ndarray,
                       share: float, edge_share: float | None = None, edge_s: float = 0.2
                       ) -> np.ndarray:
    """(T,) bool: the detections of a window the fit leaves to the track.

    Args:
        present: (T,) bool, the frames the detector saw the hand in.
        covered_share: (T,) float, the share of each detection's joints that look covered.
        times: (T,) seconds.
        share: a detection at or above this share is covered wherever it is.
        edge_share: a detection at or above this share is covered too when consecutive
            such detections join it, within ``edge_s`` seconds, to a covered detection or to
            a frame the detector missed (None: no hysteresis). The limit keeps the rule to an
            object's arrival and departure: some joints of a hand look unlike the hand for
            long stretches of clean footage (a knuckle in shadow). The hysteresis never
            takes a window's last detections: a short track seen only partly covered keeps
            them (``share`` alone decides there).
        edge_s: how far from a covered or missed frame the hysteresis reaches, seconds.

    Returns:
        (T,) bool, True for the present frames to leave to the track.

    >>> present = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1, 1], bool)
    >>> cover = np.array([0.0, 0.15, 0.2, 0.1, 0.0, 0.12, 0.0, 0.5, 0.2, 0.2])
    >>> times = np.arange(10) / 30  # 30 fps
    >>> covered_detections(present, cover, times, 0.3).astype(int).tolist()
    [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    >>> covered_detections(present, cover, times, 0.3, 0.1).astype(int).tolist()
    [0, 1, 1, 1, 0, 1, 0, 1, 1, 1]
    >>> covered_detections(present, cover, times, 0.3, 0.1, edge_s=0.05).astype(int).tolist()
    [0, 0, 0, 1, 0, 1, 0, 1, 1, 0]
    >>> covered_detections(present[5:], cover[5:], times[5:], 0.3, 0.1).astype(int).tolist()
    [0, 0, 1, 1, 1]
    >>> covered_detections(present[7:], cover[7:], times[7:], 0.3, 0.1).astype(int).tolist()
    [1, 0, 0]
    """
    if not (present.shape == covered_share.shape == times.shape) or present.ndim != 1:
        raise ValueError(f"present {present.shape}, covered_share {covered_share.shape} and "
                         f"times {times.shape} must all be (T,)")
    covered = present & (covered_share >= share)
    if edge_share is None:
        return covered
    anchors = covered | ~present
    edge = present & (covered_share >= edge_share)
    runs, _ = ndimage.label(anchors | edge)
    hidden = covered | (edge & _near_anchor(anchors, runs, times, edge_s))
    return covered if present.any() and not (present & ~hidden).any() else hidden


def _near_anchor(anchors: np.ndarray, runs: np.ndarray, times: np.ndarray, within_s: float
                 ) -> np.ndarray:
    """(T,) bool: frames within ``within_s`` seconds of an anchor frame of their own run."""
    frames = np.arange(len(anchors))
    before = np.maximum.accumulate(np.where(anchors, frames, -1))
    after = np.minimum.accumulate(np.where(anchors, frames, len(frames))[::-1])[::-1]
    near = np.zeros(len(frames), bool)
    for anchor in (before, after):
        valid = (anchor >= 0) & (anchor < len(frames))
        a = np.clip(anchor, 0, len(frames) - 1)
        near |= valid & (runs[a] == runs) & (runs > 0) & (np.abs(times - times[a]) <= within_s)
    return near
