"""Which joints of a fitted hand were seen: a per-joint estimate for the dataset (COCO's
``v``, the ``visible`` column of ``hands.parquet``).

A joint counts as visible where its hand was detected in the frame (not filled in by the
track), the weight stage kept its detection (weight above 0) and did not find it unlike its
hand's look (the frame's colour there, ``models/appearance.py``), and the fitted hand lands
on it: within ``VISIBLE_RESIDUAL`` hand sizes of the detected joint. A detector guessing a
joint it cannot see (under an object) often places it where no hand of the track's shape
and motion can reach it, so the fit lands off it. The threshold was chosen on half of the
occlusion benchmark's labelled clips (even-numbered, by name) and measured on the other
half, where the covered joints are known (``bench/occlusion.py``): with the colour test
there it catches 86% of the covered joints and calls 76% of the uncovered ones visible,
and a joint it calls visible is uncovered 99% of the time (on the tuning half: 87%, 45%,
99%; without the colour test 68%, 76%, 98%). Detections mostly covered are now left to
the track (``reconstruct.fit.covered_share``): none of their joints is visible. An
estimate, not an occlusion mask: the detector's confidence and the fit's residual tell a
covered joint poorly, its colour well (the benchmark prints their AUC).
"""

from __future__ import annotations

import torch

VISIBLE_RESIDUAL = 0.03  # hand sizes: fitted joint to detected joint


def joint_visibility(projected: torch.Tensor, keypoints: torch.Tensor, weights: torch.Tensor,
                     hand_size: torch.Tensor, detected: torch.Tensor,
                     unlike: torch.Tensor | None = None) -> torch.Tensor:
    """(T, 21) bool: each joint seen, from the fit's ``projected`` joints and the
    ``keypoints`` (T, 21, 2) px it was fitted to, their ``weights`` (T, 21), the frames'
    ``hand_size`` (T,) px, ``detected`` (T,) bool and the joints whose colour is unlike
    their hand's (``unlike`` (T, 21) bool; None: none).

    >>> k = torch.zeros(2, 21, 2)
    >>> p = k.clone(); p[0, 3] = torch.tensor([5.0, 0.0])  # 5 px off on a 100 px hand
    >>> w = torch.ones(2, 21); w[0, 4] = 0.0
    >>> v = joint_visibility(p, k, w, torch.tensor([100.0, 100.0]), torch.tensor([True, False]))
    >>> v[0, :6].tolist(), bool(v[1].any())
    ([True, True, True, False, False, True], False)
    >>> unlike = torch.zeros(2, 21, dtype=torch.bool); unlike[0, 1] = True  # a mug's colour
    >>> joint_visibility(p, k, w, torch.tensor([100.0, 100.0]), torch.tensor([True, False]),
    ...                  unlike)[0, :3].tolist()
    [True, False, True]
    """
    if projected.shape != keypoints.shape or projected.shape[-2:] != (21, 2):
        raise ValueError(f"projected {tuple(projected.shape)} and keypoints "
                         f"{tuple(keypoints.shape)} must both be (T, 21, 2)")
    residual = (projected - keypoints).nan_to_num(nan=float("inf")).norm(dim=-1)
    close = residual <= VISIBLE_RESIDUAL * hand_size[:, None].clamp_min(1.0)
    seen = close & (weights > 0) & detected[:, None]
    return seen if unlike is None else seen & ~unlike
