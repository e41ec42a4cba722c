"""Occluders for the occlusion benchmark: what is pasted is what is counted as covered, and a
pass crosses the hand from clear to clear."""

from __future__ import annotations

import numpy as np

from handlabel.models.occluders import Occluder, composite, covered, cut_occluder, plan_pass


def disc(radius: int = 20) -> Occluder:
    side = 2 * radius
    y, x = np.mgrid[:side, :side] + 0.5
    alpha = ((x - radius) ** 2 + (y - radius) ** 2 <= radius ** 2).astype(np.float32)
    return Occluder("disc", np.full((side, side, 3), 200, np.uint8), alpha)


def test_pixels_counted_covered_are_the_pixels_pasted_over():
    frame = np.zeros((120, 160, 3), np.uint8)
    occluder, centre = disc(), np.array([70.3, 50.8])
    pasted = composite(frame, occluder, centre)
    ys, xs = np.mgrid[:120, :160]
    points = np.column_stack([xs.ravel(), ys.ravel()]).astype(float) + 0.5
    under = covered(points, occluder, centre).reshape(120, 160)
    assert under.sum() > 0.9 * np.pi * 20 ** 2
    assert (pasted[under] == 200).all() and (pasted[~under] < 100).all()


def test_an_occluder_cut_by_colour_keeps_the_object_not_its_background():
    frame = np.full((100, 100, 3), 240, np.uint8)  # a white table
    frame[30:70, 40:60] = (200, 20, 30)  # a red cup, 40 x 20
    cup = cut_occluder("cup", frame, (20, 10, 80, 90), "red")
    assert cup.alpha.shape == (80, 60)
    assert cup.alpha[40, 30] > 0.9 and cup.alpha[5, 5] < 0.1
    assert abs((cup.alpha > 0.5).sum() - 800) < 80


def test_a_pass_starts_and_ends_clear_of_the_hand_and_covers_it_midway():
    rng = np.random.default_rng(3)
    hand = np.column_stack([rng.uniform(100, 160, 21), rng.uniform(200, 260, 21)])
    box = np.concatenate([hand.min(0), hand.max(0)])
    for _ in range(20):
        passing = plan_pass(rng, disc(50), box, first=10, frames=12)
        shares = [covered(hand, passing.occluder, passing.centre(t)).mean()
                  for t in range(30)]
        assert shares[10] == 0 and shares[21] == 0  # its first and last frames
        assert shares[9] == 0 and shares[22] == 0  # before and after it: no occluder
        assert max(shares) > 0.2  # a disc of 0.6-1 box sides, through the middle third
