"""Which hand is which over a whole video: identity by continuity first, handedness second.

The detector names each hand's side frame by frame and can be wrong for long, confident
stretches: on the two-hand cups clip both hands swap labels together while neither moves
(frames 165 to 167) and stay swapped for 15-40 frames. The online tracker
(``tracking.SlotTracker``) follows a confident label, so such a stretch reaches the labels as
two identity swaps and a mirrored hand. Once a video's detections are all in:

1. detections are linked into tracklets by continuity alone (the centre each tracklet
   predicts, in box sides); where two hands could each continue either tracklet (hands that
   cross or touch), both tracklets end, so that what follows is sided by its own evidence;
2. tracklets seen in one frame are different hands, so each group of tracklets linked by
   shared frames has exactly two ways to be sided (which one is the right hand), and takes
   the one its evidence prefers;
3. the evidence is every frame's handedness (log-odds, clipped: a stretch of confident wrong
   labels cannot outvote the rest of its tracklet) and, in frames with both hands, which of
   them is on the image's left against the video's convention (a camera facing the person
   sees the right hand on the image's left; an egocentric one on its right). The convention
   is chosen with the sides, as the one that explains the whole video best.

Written here because no tracking library does offline two-hand identity with a chirality
vote; the linking is a greedy frame-by-frame assignment over at most two hands per frame.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

RIGHT, LEFT = 1, -1  # a hand's side; slot 0 holds the left hand, slot 1 the right


@dataclass(frozen=True)
class IdentityParams:
    max_gap: int = 4  # frames a tracklet may go unseen and still continue
    max_step: float = 0.5  # box sides the centre may stray from its prediction, per frame
    ambiguity: float = 0.25  # box sides: two pairings closer than this are a tie
    label_clip: float = 2.0  # the most log-odds one frame's handedness adds (p = 0.88)
    order_weight: float = 1.5  # log-odds one two-hand frame's image order adds


@dataclass
class _Tracklet:
    last: int
    centre: np.ndarray
    side: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    closed: bool = False

    def predict(self, t: int) -> np.ndarray:
        return self.centre + self.velocity * (t - self.last)

    def extend(self, t: int, centre: np.ndarray, side: float) -> None:
        self.velocity = (centre - self.centre) / (t - self.last)
        self.last, self.centre, self.side = t, centre, side


def _pairings(n_dets: int, n_tracks: int):
    """Every injective pairing of detections to tracklets, as tuples (tracklet or None)."""
    options = list(range(n_tracks)) + [None] * n_dets
    seen = set()
    for pick in itertools.permutations(options, n_dets):
        if pick not in seen:
            seen.add(pick)
            yield pick


def link_tracklets(present: np.ndarray, box: np.ndarray,
                   params: IdentityParams = IdentityParams()) -> np.ndarray:
    """(T, S) the tracklet of each detection (-1 where none), by continuity alone.

    Args:
        present: (T, S) bool, a detection in slot s of frame t (slots are not trusted).
        box: (T, S, 4) each detection's box, x0 y0 x1 y1 in pixels.

    >>> box = np.array([[[0, 0, 10, 10], [50, 0, 60, 10]]] * 3, float)
    >>> box[1] = box[1][::-1]  # the slots swap in frame 1; the hands do not move
    >>> link_tracklets(np.ones((3, 2), bool), box).tolist()
    [[0, 1], [1, 0], [0, 1]]
    """
    if present.ndim != 2 or box.shape != (*present.shape, 4):
        raise ValueError(f"link_tracklets: present {present.shape} and box {box.shape} must "
                         "be (T, S) and (T, S, 4)")
    centre = (box[..., :2] + box[..., 2:]) / 2
    size = np.maximum(box[..., 2] - box[..., 0], 1.0)
    ids = np.full(present.shape, -1)
    tracks: list[_Tracklet] = []
    active: list[int] = []  # tracklets that may still continue (pruned every frame)
    for t in range(len(present)):
        dets = np.flatnonzero(present[t])
        active = [k for k in active
                  if not tracks[k].closed and t - tracks[k].last <= params.max_gap + 1]
        cost = np.full((len(dets), len(active)), np.inf)
        for i, d in enumerate(dets):
            for j, k in enumerate(active):
                steps = t - tracks[k].last
                distance = np.linalg.norm(centre[t, d] - tracks[k].predict(t)) / tracks[k].side
                if distance <= params.max_step * steps:
                    cost[i, j] = distance
        chosen = _choose(cost, params.ambiguity)
        if chosen is None:  # two hands that could each be either: end both tracklets
            for j in range(len(active)):
                if np.isfinite(cost[:, j]).any():
                    tracks[active[j]].closed = True
            chosen = (None,) * len(dets)
        for i, j in enumerate(chosen):
            d = dets[i]
            if j is None:
                tracks.append(_Tracklet(t, centre[t, d], size[t, d]))
                ids[t, d] = len(tracks) - 1
            else:
                tracks[active[j]].extend(t, centre[t, d], size[t, d])
                ids[t, d] = active[j]
        active += [int(k) for k in ids[t, dets] if k not in active]
    return ids


def _choose(cost: np.ndarray, ambiguity: float) -> tuple | None:
    """The pairing that continues the most tracklets at the least cost; None where another
    pairing, continuing as many, differs in a tracklet and costs nearly as little."""
    scored = []
    for pick in _pairings(*cost.shape):
        if all(j is None or np.isfinite(cost[i, j]) for i, j in enumerate(pick)):
            matched = sum(j is not None for j in pick)
            total = sum(cost[i, j] for i, j in enumerate(pick) if j is not None)
            scored.append((-matched, total, pick))
    scored.sort(key=lambda s: (s[0], s[1]))
    best = scored[0]
    for other in scored[1:]:
        if other[0] == best[0] and other[1] - best[1] < ambiguity and best[0] < 0:
            return None
    return best[2]


def hand_sides(present: np.ndarray, box: np.ndarray, p_right: np.ndarray,
               params: IdentityParams = IdentityParams()) -> tuple[np.ndarray, int]:
    """(T, S) the side of each detection (``RIGHT``, ``LEFT``; 0 where none) and the video's
    convention (``RIGHT``: the right hand is on the image's right; ``LEFT``: on its left).

    Args:
        present: (T, S) bool, box: (T, S, 4) as in :func:`link_tracklets`.
        p_right: (T, S) the detector's probability that each hand is a right hand (NaN:
            no opinion).

    >>> box = np.array([[[0, 0, 10, 10], [50, 0, 60, 10]]] * 6, float)
    >>> p = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.95]] * 2)  # labels flip in the last two
    >>> sides, convention = hand_sides(np.ones((6, 2), bool), box, p)
    >>> sides[:, 0].tolist(), convention  # the hand on the image's left is the right hand
    ([1, 1, 1, 1, 1, 1], -1)
    """
    ids = link_tracklets(present, box, params)
    n = int(ids.max()) + 1
    if n == 0:
        return np.zeros(present.shape, int), LEFT
    slot_side = np.where(np.arange(present.shape[1]) == 0, LEFT, RIGHT)[None]
    logit = np.log(np.clip(p_right, 1e-6, 1 - 1e-6) / np.clip(1 - p_right, 1e-6, 1))
    vote = np.clip(np.nan_to_num(logit), -params.label_clip, params.label_clip)
    vote = vote + 1e-3 * slot_side  # a tie keeps the tracker's slots
    evidence = np.bincount(ids[present], vote[present], minlength=n)
    parent, parity = _group(ids, present)
    centre_x = (box[..., 0] + box[..., 2]) / 2
    group_evidence, group_order = {}, {}
    for k in range(n):
        group_evidence[parent[k]] = group_evidence.get(parent[k], 0.0) + parity[k] * evidence[k]
    for t in np.flatnonzero(present.sum(1) == 2):
        a, b = ids[t, present[t]]
        if parent[a] == parent[b] and parity[a] != parity[b]:
            order = np.sign(centre_x[t, present[t]][0] - centre_x[t, present[t]][1])
            group_order[parent[a]] = group_order.get(parent[a], 0.0) + parity[a] * order
    groups = sorted(group_evidence)

    def fit(convention: int) -> float:
        return sum(abs(group_evidence[g] + convention * params.order_weight
                       * group_order.get(g, 0.0)) for g in groups)

    convention = RIGHT if fit(RIGHT) > fit(LEFT) else LEFT
    sign = {g: 1 if group_evidence[g] + convention * params.order_weight
            * group_order.get(g, 0.0) >= 0 else -1 for g in groups}
    tracklet_side = np.array([sign[parent[k]] * parity[k] for k in range(n)])
    sides = np.where(present, tracklet_side[np.maximum(ids, 0)], 0)
    clash = (present.sum(1) == 2) & (sides[:, 0] == sides[:, -1])
    for t in np.flatnonzero(clash):  # a tie the grouping could not keep apart: the weaker turns
        weaker = int(np.argmin(np.abs(evidence[ids[t]])))
        sides[t, weaker] *= -1
    return sides, convention


def _group(ids: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tracklets joined by the frames they share (which make them different hands): each
    tracklet's group and its parity in the group (+1 or -1; same parity, same side). Pairs
    that share the most frames join first; a pair that would contradict the parities already
    set (a hand hidden while two others were seen) is left out."""
    n = int(ids.max()) + 1
    shared: dict[tuple[int, int], int] = {}
    for t in np.flatnonzero(present.sum(1) == 2):
        a, b = sorted(ids[t, present[t]])
        shared[(a, b)] = shared.get((a, b), 0) + 1
    members = {k: [k] for k in range(n)}
    parent, parity = np.arange(n), np.ones(n, int)
    for (a, b), _ in sorted(shared.items(), key=lambda item: -item[1]):
        if parent[a] == parent[b]:
            continue
        flip = -parity[a] * parity[b]  # after it, b's parity must be -a's
        keep, join = (parent[a], parent[b]) if len(members[parent[a]]) >= len(
            members[parent[b]]) else (parent[b], parent[a])
        for k in members.pop(join):
            parent[k] = keep
            parity[k] *= flip
            members[keep].append(k)
    return parent, parity


def slot_sources(sides: np.ndarray) -> np.ndarray:
    """(T, 2) for each slot (0 left, 1 right), the slot its detection comes from (-1: none).

    >>> slot_sources(np.array([[1, -1], [-1, 0], [0, 1]])).tolist()
    [[1, 0], [0, -1], [-1, 1]]
    """
    sources = np.full(sides.shape, -1)
    for target, side in enumerate((LEFT, RIGHT)):
        frames, slots = np.nonzero(sides == side)
        sources[frames, target] = slots
    return sources
