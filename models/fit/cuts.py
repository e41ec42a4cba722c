"""Where a slot's detections stop being one hand in one shot: cuts between frames.

A track is fitted with temporal terms and one shape, which is right only while its frames
show one continuous motion. An edited video's cut, an image set read as frames, or another
person's hand taking the slot breaks that; the 2D detections show it, because they are far
more precise than the 3D. Between consecutive detections a and b, three changes are measured
against thresholds (per nominal frame; over n frames, n**0.5 times them):

- shape: the median joint displacement of the keypoints after removing their centroid and
  size, in hand sizes (articulation and out-of-plane turns);
- position: the centroid displacement, in hand sizes;
- size: the absolute log ratio of the hand sizes.

A cut between a and b needs the larger of the three ratios above 1 for (a, b), and also for
(a, the detection after b) and (the detection before a, b): a change that persists on both
sides. One wrong detection between good ones therefore stays inside its track, where the
temporal terms can outvote it.

Several wrong detections in a row (an object passing over the hand: the detector's hand
jumps about for a few frames) pass that test and chop a track into pieces, and the frames
between pieces are then never filled. So a cut must also hold at a longer scale: the cuts
within ``settle`` frames of a first one are one disturbance, which is no cut when the hand
after it is where and as it was before it: between the last detection before the first cut
and the detection at the last, no jump at the thresholds of consecutive frames (take the
disturbance out, and the two could be one frame and the next). A hand that moves on while
the detections jump, an edited cut and a new hand keep their cuts.

Where most consecutive detections of a slot jump (``SHUFFLED_SHARE``), the slot's frames are
not a continuous shot at all (an image collection read as a video): every detection then
starts its own track. On the sample videos 1 pair in 16 jumps in the fast gesture clip and
none in the others (docs/components.md, Reconstruction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..keypoints import hand_sizes

SHUFFLED_SHARE = 0.4  # jumps among consecutive detections beyond which nothing is continuous


@dataclass(frozen=True)
class CutThresholds:
    shape: float = 0.2  # hand sizes per frame
    position: float = 0.5  # hand sizes per frame
    size: float = 0.5  # |log size ratio| per frame


def _normalised(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 21, 2) keypoints -> shape (N, 21, 2) in hand sizes, centroid (N, 2), size (N,)."""
    size = np.maximum(hand_sizes(keypoints), 1.0)
    centre = keypoints.mean(1)
    return (keypoints - centre[:, None]) / size[:, None, None], centre, size


def _jump(shape, centre, size, frames, a, b, limits: CutThresholds, grow: bool = True
          ) -> np.ndarray:
    """(n,) the larger ratio of change to its threshold between detections a[i] and b[i],
    the thresholds grown with the frames between them (``grow``) or as for one frame."""
    steps = np.sqrt(np.maximum(frames[b] - frames[a], 1)) if grow else 1.0  # a random walk
    shape_change = np.median(np.linalg.norm(shape[a] - shape[b], axis=-1), axis=-1)
    position = np.linalg.norm(centre[a] - centre[b], axis=-1) / np.sqrt(size[a] * size[b])
    scale = np.abs(np.log(size[a] / size[b]))
    return np.maximum.reduce([shape_change / limits.shape, position / limits.position,
                              scale / limits.size]) / steps


def evidence_cuts(keypoints: np.ndarray, present: np.ndarray,
                  limits: CutThresholds = CutThresholds(), settle: int = 0) -> np.ndarray:
    """(T,) True at each detected frame that must start a new track.

    Args:
        keypoints: (T, 21, 2) one slot's detections in pixels (anything where not present).
        present: (T,) bool, frames with a detection.
        limits: the thresholds per nominal frame.
        settle: cuts within this many frames of a first one are judged together, by the
            hand before and after them (``settled_cuts``); 0 or 1: every cut stands.

    >>> still = np.tile(np.random.default_rng(0).uniform(0, 100, (1, 21, 2)), (6, 1, 1))
    >>> moved = still.copy(); moved[3:] += 400  # the hand is elsewhere from frame 3 on
    >>> np.flatnonzero(evidence_cuts(moved, np.ones(6, bool)))
    array([3])
    >>> outlier = still.copy(); outlier[3] += 400  # one wrong detection
    >>> np.flatnonzero(evidence_cuts(outlier, np.ones(6, bool)))
    array([], dtype=int64)
    >>> scattered = still + np.random.default_rng(1).uniform(0, 2000, (6, 1, 2))
    >>> np.flatnonzero(evidence_cuts(scattered, np.ones(6, bool)))  # images, not a video
    array([1, 2, 3, 4, 5])
    >>> passing = np.tile(still[:1], (20, 1, 1))  # an object over the hand in frames 8-11
    >>> passing[8:12] += np.random.default_rng(2).uniform(0, 600, (4, 1, 2))
    >>> np.flatnonzero(evidence_cuts(passing, np.ones(20, bool)))
    array([ 8,  9, 10, 11, 12])
    >>> np.flatnonzero(evidence_cuts(passing, np.ones(20, bool), settle=30))  # one track
    array([], dtype=int64)
    >>> passing[12:] += 400  # and another shot from frame 12: its cuts stand
    >>> np.flatnonzero(evidence_cuts(passing, np.ones(20, bool), settle=30))
    array([ 8,  9, 10])
    """
    if keypoints.ndim != 3 or keypoints.shape[1:] != (21, 2):
        raise ValueError(f"evidence_cuts: keypoints of shape {keypoints.shape}, need (T, 21, 2)")
    frames = np.flatnonzero(present)
    cuts = np.zeros(len(present), bool)
    if len(frames) < 2:
        return cuts
    shape, centre, size = _normalised(keypoints[frames].astype(np.float64))
    index = np.arange(len(frames))
    a, b = index[:-1], index[1:]
    after_b = np.minimum(b + 1, len(frames) - 1)
    before_a = np.maximum(a - 1, 0)
    single = _jump(shape, centre, size, frames, a, b, limits) > 1
    if single.mean() > SHUFFLED_SHARE:
        cuts[frames[1:]] = True
        return cuts
    jumped = (single & (_jump(shape, centre, size, frames, a, after_b, limits) > 1)
              & (_jump(shape, centre, size, frames, before_a, b, limits) > 1))
    cut = b[jumped]
    if settle > 1:
        cut = settled_cuts(cut, frames, settle,
                           lambda i, j: _jump(shape, centre, size, frames, i, j, limits, False))
    cuts[frames[cut]] = True
    return cuts


def settled_cuts(cut: np.ndarray, frames: np.ndarray, settle: int,
                 jump: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The cuts (indices into ``frames``, the detected frames; each starts a piece) that
    hold at the scale of ``settle`` frames: the cuts within ``settle`` frames of a cluster's
    first one (a disturbance lasts less than that) are dropped together when ``jump`` (a
    function of two index arrays, > 1 for a jump) finds none between the last detection
    before the first and the detection at the last, as between consecutive frames: the hand
    after the disturbance is where and as it was before it."""
    first: list[int] = []
    last: list[int] = []
    for k, at in enumerate(frames[cut]):
        if first and at - frames[cut[first[-1]]] < settle:
            last[-1] = k
        else:
            first.append(k)
            last.append(k)
    if not first:
        return cut
    held = jump(cut[first] - 1, cut[last]) > 1
    return np.concatenate([cut[a : b + 1] for a, b, h in zip(first, last, held, strict=True)
                           if h] or [cut[:0]])
