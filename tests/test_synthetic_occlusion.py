"""Objects passing over synthetic hand sequences, and the detector's modelled answer: each
effect checked alone against its known size."""

from __future__ import annotations

import numpy as np

from handlabel.models.keypoints import hand_sizes
from handlabel.models.synthetic_occlusion import OcclusionResponse, occluded_detections, passes

NONE = OcclusionResponse(0.0, 0.0, 0.0, 0.0, 0.0)


def moving_hand(frames: int = 120) -> np.ndarray:
    """(T, 21, 2) px: a fixed spread of joints travelling right at 4 px per frame."""
    spread = np.random.default_rng(1).normal(0, 40, (21, 2))
    return spread + np.array([300.0, 360.0]) + np.arange(frames)[:, None, None] * [4.0, 0.0]


def test_discs_cover_joints_only_while_they_cross_the_hand():
    hand = moving_hand()
    covered = passes(hand, 30.0, np.random.default_rng(0), every_s=1.5, span_s=(0.5, 0.5))
    crossing = np.zeros(len(hand), bool)
    for start in (22, 67, 112):  # one pass every 45 frames from half a step, 15 frames each
        crossing[start : start + 15] = True
    assert covered.any(-1)[crossing].sum() >= 15 and not covered[~crossing].any()
    # each disc starts and ends a hand size clear of the hand
    assert not covered[[22, 36, 67, 81]].any()


def test_uncovered_frames_are_the_clean_detections():
    hand = moving_hand()
    covered = passes(hand, 30.0, np.random.default_rng(0))
    clean = hand + 2.0
    out = occluded_detections(clean, np.full((120, 21), 0.8), hand, covered,
                              np.random.default_rng(2))
    free = ~covered.any(-1)
    np.testing.assert_array_equal(out.keypoints[free], clean[free])
    assert out.present[free].all() and (out.confidence[free] == 0.8).all()
    assert not out.present[covered.any(-1)].all()  # some covered frames are missed


def test_each_effect_has_its_size():
    hand = moving_hand()
    covered = passes(hand, 30.0, np.random.default_rng(0))
    size = hand_sizes(hand)
    rng = np.random.default_rng(3)
    conf = np.ones((120, 21))

    joint_only = occluded_detections(hand, conf, hand, covered, rng,
                                     OcclusionResponse(0.0, 0.0, 0.19, 0.0, 0.0))
    moved = np.linalg.norm(joint_only.keypoints - hand, axis=-1) / size[:, None]
    np.testing.assert_allclose(moved[covered], 0.19, rtol=1e-9)
    assert (moved[~covered] == 0).all() and joint_only.present.all()

    whole = occluded_detections(hand, conf, hand, covered, rng,
                                OcclusionResponse(0.0, 0.49, 0.0, 0.0, 0.0))
    moved = np.linalg.norm(whole.keypoints - hand, axis=-1) / size[:, None]
    np.testing.assert_allclose(moved, 0.49 * covered.mean(-1)[:, None].repeat(21, 1),
                               atol=1e-9)

    flags = occluded_detections(hand, conf, hand, covered, rng,
                                OcclusionResponse(0.0, 0.0, 0.0, 1.0, 0.0))
    np.testing.assert_array_equal(flags.unlike, covered)

    all_covered = np.ones_like(covered)
    missed = occluded_detections(hand, conf, hand, all_covered, rng,
                                 OcclusionResponse(1.0, 0.0, 0.0, 0.0, 0.0))
    assert not missed.present.any() and (missed.confidence == 0).all()
    assert occluded_detections(hand, conf, hand, covered, rng, NONE).present.all()
