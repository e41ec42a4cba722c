"""Which hand is which over a whole video (models/identity.py, tasks/detect_identity.py).

Known answers from synthetic tracks: two hands with true sides and a detector whose labels are
wrong in the ways measured on the two-hand clips (both hands' labels swapped together for a
stretch, a one-hand clip called the other side for a few frames, hands that cross), and a real
frame's hand moved to the other side, whose crop must be the one detect would have cut for
that side.
"""

from __future__ import annotations

import numpy as np
import zarr

from handlabel.config import DetectConfig
from handlabel.models.detectors.schema import HandDetection
from handlabel.models.identity import LEFT, RIGHT, hand_sides, link_tracklets
from handlabel.models.tracking import SLOT_SIDES
from handlabel.storage.stage_arrays import StageArrays
from handlabel.storage.video import iter_frames
from handlabel.tasks.detect import _empty_chunk, _fill, detect_spec
from handlabel.tasks.detect_identity import _move

from .conftest import GESTURE_AVI

SIDE = 80.0  # px, a hand's box


def boxes(centres: np.ndarray) -> np.ndarray:
    """(T, S, 4) boxes of side SIDE around (T, S, 2) centres."""
    return np.concatenate([centres - SIDE / 2, centres + SIDE / 2], axis=-1)


def detections(true_x: np.ndarray, true_side: np.ndarray, p_true: np.ndarray):
    """Slots as a frame-by-frame tracker following the labels fills them: each hand in the
    slot its label names. true_x, true_side, p_true: (T, 2) per hand (not per slot)."""
    frames = len(true_x)
    label = np.where(p_true >= 0.5, true_side, -true_side)
    slot = np.where(label == RIGHT, 1, 0)
    clash = slot[:, 0] == slot[:, 1]
    slot[clash, 1] = 1 - slot[clash, 0]
    present, box = np.zeros((frames, 2), bool), np.full((frames, 2, 4), np.nan)
    p_right, truth = np.full((frames, 2), np.nan), np.zeros((frames, 2), int)
    for t in range(frames):
        for hand in range(2):
            if np.isnan(true_x[t, hand]):
                continue
            s = slot[t, hand]
            present[t, s] = True
            box[t, s] = boxes(np.array([true_x[t, hand], 300.0]))
            p_right[t, s] = p_true[t, hand] if true_side[t, hand] == RIGHT else 1 - p_true[t, hand]
            truth[t, s] = true_side[t, hand]
    return present, box, p_right, truth


def facing_two_hands(frames: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A camera facing the person: the right hand on the image's left (x 400), the left hand
    on its right (x 800), both drifting slowly."""
    drift = 2.0 * np.arange(frames)[:, None]
    return (np.array([[400.0, 800.0]]) + drift, np.tile([[RIGHT, LEFT]], (frames, 1)))


def test_both_labels_swapped_for_a_stretch_are_put_back():
    """The cups clip's defect: both hands' labels swap together, confidently, for 20 of 60
    frames while neither hand moves; the tracker's slots swap with them."""
    x, side = facing_two_hands()
    p_true = np.full((60, 2), 0.9)
    p_true[20:40] = 0.03  # the detector sure of the wrong side
    present, box, p_right, truth = detections(x, side, p_true)
    assert (truth[20:40, 0] == RIGHT).all()  # the slots are wrong there: a swap to repair
    sides, convention = hand_sides(present, box, p_right)
    assert (sides == truth).all()
    assert convention == LEFT  # the right hand on the image's left


def test_a_stretch_longer_than_the_rest_is_repaired_by_the_image_order():
    """Where the wrong labels outnumber the right ones inside the linked hands, the two hands'
    image order, which the whole video agrees on, decides."""
    x = np.concatenate([facing_two_hands(40)[0], facing_two_hands(40)[0]])
    x[40:] += 3000  # the hands leave and come back elsewhere: two groups of tracklets
    side = np.tile([[RIGHT, LEFT]], (80, 1))
    p_true = np.full((80, 2), 0.9)
    p_true[40:65] = 0.05  # the second visit: wrongly labelled for 25 of its 40 frames
    present, box, p_right, truth = detections(x, side, p_true)
    sides, _ = hand_sides(present, box, p_right)
    assert (sides == truth).all()


def test_hands_that_cross_keep_their_sides():
    """Two hands pass each other (their image order reverses); the labels are right but
    unsure where they overlap. Each hand keeps its side before, during and after."""
    frames = 50
    t = np.arange(frames, dtype=float)
    x = np.stack([300 + 12 * t, 906 - 12 * t], axis=1)  # they pass each other at frame 25
    side = np.tile([[RIGHT, LEFT]], (frames, 1))
    p_true = np.full((frames, 2), 0.8)
    p_true[20:31] = 0.45  # labels flicker while the hands overlap
    present, box, p_right, truth = detections(x, side, p_true)
    sides, _ = hand_sides(present, box, p_right)
    assert (sides == truth).all()


def test_a_one_hand_clip_called_the_other_side_for_a_few_frames_stays_one_hand():
    """The gesture clip's defect: a right hand labelled left for 3 frames took the left slot."""
    frames = 20
    x = np.stack([500 + 5 * np.arange(frames), np.full(frames, np.nan)], axis=1)
    side = np.tile([[RIGHT, LEFT]], (frames, 1))
    p_true = np.full((frames, 2), 0.95)
    p_true[8:11, 0] = 0.2
    present, box, p_right, _ = detections(x, side, p_true)
    assert present[8:11, 0].all()
    sides, _ = hand_sides(present, box, p_right)
    assert (sides[present] == RIGHT).all()


def test_a_hand_that_jumps_across_the_image_starts_a_new_tracklet():
    present = np.zeros((4, 2), bool)
    present[:, 1] = True
    centres = np.array([[[0, 0], [100, 300]], [[0, 0], [104, 300]], [[0, 0], [900, 300]],
                        [[0, 0], [904, 300]]], float)
    ids = link_tracklets(present, boxes(centres))
    assert ids[0, 1] == ids[1, 1] != ids[2, 1] == ids[3, 1]


def test_a_moved_hand_carries_the_crop_detect_cuts_for_its_new_side(tmp_path):
    """A real frame's hand, detected as a left hand (mirrored crop) and moved to the right
    slot: crop, crop keypoints, crop K and flag equal what detect writes for a right hand."""
    rgb = next(iter_frames(str(GESTURE_AVI)))[0]
    keypoints = np.stack([np.linspace(120, 200, 21), np.linspace(80, 170, 21)], axis=1)
    hand = HandDetection(keypoints, np.full(21, 0.9), "left", 0.7, 0.7)
    config = DetectConfig(crop_size=64)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    left, right = SLOT_SIDES.index("left"), SLOT_SIDES.index("right")
    as_left, as_right = _empty_chunk(2, 64), _empty_chunk(2, 64)
    _fill(as_left, 0, left, hand, rgb, K, config)
    _fill(as_right, 0, right, hand, rgb, K, config)
    arrays = StageArrays.create(zarr.open_group(str(tmp_path / "store"), mode="w"), "detect",
                                n_frames=2, chunk_frames=2, spec=detect_spec(64), attrs={})
    arrays.write_chunk(0, 0, as_left)
    _move(arrays, 0, 2, np.array([[-1, left], [-1, -1]]), K)
    for key in ("present", "keypoints", "handedness", "box", "mirrored", "score"):
        np.testing.assert_array_equal(arrays.read(key), as_right[key], err_msg=key)
    np.testing.assert_allclose(arrays.read("crop_keypoints")[0, right],
                               as_right["crop_keypoints"][0, right], atol=1e-3)
    np.testing.assert_allclose(arrays.read("crop_K")[0, right], as_right["crop_K"][0, right],
                               rtol=1e-5)
    crop = arrays.read("crops")[0, right].astype(int)
    assert np.abs(crop - as_right["crops"][0, right]).max() <= 2
    assert np.abs(crop - as_left["crops"][0, left]).mean() > 5  # it was mirrored
