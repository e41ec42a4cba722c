"""Clips for S2HAND(V) training: windows of T frames of one track, ``stride`` frames apart,
never across a gap (a frame the detector missed, or a hand left out of training)."""

from __future__ import annotations

import numpy as np


def clip_windows(track: np.ndarray, frame: np.ndarray, length: int, stride: int = 1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``length`` consecutive samples of one track that cover every sample.

    A run of frames ``stride`` apart is tiled with windows (the last one aligned to the
    run's end, so it may overlap its neighbour); a run shorter than ``length`` gives one
    window padded by repeating its last sample, marked invalid.

    Args:
        track: (N,) track identity of each sample (any hashable values).
        frame: (N,) frame number of each sample.
        length: T, frames per clip. stride: frame step inside a clip.
    Returns:
        windows (C, T) sample positions, and valid (C, T) bool (False: padding).

    >>> w, v = clip_windows(np.array([0, 0, 0, 0, 0, 1]), np.array([0, 1, 2, 5, 6, 0]), 2)
    >>> w.tolist(), v.tolist()
    ([[0, 1], [1, 2], [3, 4], [5, 5]], [[True, True], [True, True], [True, True], [True, False]])
    """
    if length < 1 or stride < 1:
        raise ValueError(f"clip length {length} and stride {stride} must be at least 1")
    track, frame = np.asarray(track), np.asarray(frame)
    if track.shape != frame.shape or track.ndim != 1:
        raise ValueError(f"track {track.shape} and frame {frame.shape} must be one (N,) shape")
    windows, valid = [], []
    for run in _runs(track, frame, stride):
        if len(run) < length:
            pad = length - len(run)
            windows.append(np.concatenate([run, np.repeat(run[-1:], pad)]))
            valid.append(np.arange(length) < len(run))
            continue
        starts = list(range(0, len(run) - length + 1, length))
        if starts[-1] != len(run) - length:
            starts.append(len(run) - length)
        for s in starts:
            windows.append(run[s : s + length])
            valid.append(np.ones(length, bool))
    if not windows:
        return np.zeros((0, length), int), np.zeros((0, length), bool)
    return np.stack(windows), np.stack(valid)


def _runs(track: np.ndarray, frame: np.ndarray, stride: int) -> list[np.ndarray]:
    """Sample positions of each run of one track's frames ``stride`` apart, in frame order."""
    runs = []
    for key in dict.fromkeys(track.tolist()):
        mine = np.flatnonzero(track == key)
        for phase in np.unique(frame[mine] % stride):
            chain = mine[frame[mine] % stride == phase]
            chain = chain[np.argsort(frame[chain], kind="stable")]
            breaks = np.flatnonzero(np.diff(frame[chain]) != stride) + 1
            runs.extend(np.split(chain, breaks))
    return runs


def sample_clip_rows(track: np.ndarray, frame: np.ndarray, length: int, stride: int,
                     max_samples: int | None, seed: int) -> np.ndarray:
    """Sorted sample positions of a random choice of whole clips holding at most about
    ``max_samples`` samples (all of them where ``max_samples`` is None or not reached), so
    that sampling a large archive keeps clips whole instead of thinning every track."""
    windows, valid = clip_windows(track, frame, length, stride)
    if max_samples is None or len(track) <= max_samples:
        return np.arange(len(track))
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(windows))[: max(max_samples // length, 1)]
    return np.unique(windows[chosen][valid[chosen]])
