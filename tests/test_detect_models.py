"""Crops, tracking, weights and augmentations on synthetic cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from handlabel.models.crops import crop_affine, crop_image, crop_intrinsics, square_box, to_crop
from handlabel.models.detectors import JOINT_NAMES, HandDetection
from handlabel.models.detectors.augment import Augmentation, apply, crop_transform, invert
from handlabel.models.detectors.schema import BONES
from handlabel.models.tracking import SlotTracker
from handlabel.models.weights import (
    IMPLAUSIBLE,
    TEMPORAL_OUTLIER,
    WeightParams,
    supervision_weights,
)

K = np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]])


def project(K: np.ndarray, points: np.ndarray) -> np.ndarray:
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:]


def template_hand(center=(400.0, 300.0), size=100.0) -> np.ndarray:
    """An open right hand's 21 keypoints, about ``size`` pixels tall."""
    fingers = np.array([-0.45, -0.2, 0.0, 0.2, 0.4])
    points = [[0.0, 0.5]]
    for f, x in enumerate(fingers):
        base = [x * (1.2 if f == 0 else 1.0), 0.0 if f else 0.3]
        for k in range(4):
            points.append([base[0] * (1 + 0.1 * k), base[1] - 0.12 * k - (0 if f else 0.0)])
    return np.array(points) * size + np.array(center)


def test_schema_has_21_named_joints_and_20_bones_from_the_wrist_out():
    assert len(JOINT_NAMES) == 21
    assert JOINT_NAMES[4] == "thumb_tip" and JOINT_NAMES[8] == "index_tip"
    assert len(BONES) == 20 and BONES[0] == (0, 1) and BONES[4] == (0, 5) and BONES[7] == (7, 8)


@pytest.mark.parametrize("mirror", [False, True])
def test_crop_intrinsics_project_the_scene_onto_crop_pixels(mirror):
    rng = np.random.default_rng(1)
    points = rng.uniform([-0.1, -0.1, 0.5], [0.1, 0.1, 0.7], (21, 3))
    pixels = project(K, points)
    center, side = square_box(pixels, 1.6)
    affine = crop_affine(center, side, 224, mirror)
    crop_K = crop_intrinsics(K, affine, mirror)
    assert crop_K[0, 0] > 0 and crop_K[1, 1] > 0
    seen = points * np.array([-1.0, 1.0, 1.0]) if mirror else points  # mirrored scene
    np.testing.assert_allclose(project(crop_K, seen), to_crop(pixels, affine), atol=1e-6)
    crop = to_crop(pixels, affine)
    assert crop.min() > 0 and crop.max() < 223  # the margin keeps every joint inside


def test_crop_image_puts_a_marked_pixel_where_the_affine_says():
    image = np.zeros((720, 1280, 3), np.uint8)
    image[300:304, 500:504] = 255  # a 4x4 white square centred at (501.5, 301.5)
    affine = crop_affine(np.array([480.0, 320.0]), 112.0, 224, mirror=True)
    crop = crop_image(image, affine, 224)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    expected = to_crop(np.array([[501.5, 301.5]]), affine)[0]
    assert abs(xs.mean() - expected[0]) < 1.0 and abs(ys.mean() - expected[1]) < 1.0


def hand(keypoints, side, score) -> HandDetection:
    return HandDetection(keypoints, np.ones(21), side, score, score)


def test_tracker_keeps_a_hand_in_its_slot_through_label_flicker():
    tracker = SlotTracker()
    slots = []
    for t in range(20):
        label, score = ("left", 0.6) if t in (7, 8) else ("right", 0.95)
        assigned = tracker.assign([hand(template_hand((400 + 3 * t, 300)), label, score)])
        slots.append([a is not None for a in assigned].index(True))
    assert slots == [1] * 20


def test_tracker_separates_two_hands_and_follows_confident_labels():
    tracker = SlotTracker()
    for t in range(10):
        left = hand(template_hand((300 + 5 * t, 300)), "left", 0.9)
        right = hand(template_hand((700 - 5 * t, 300)), "right", 0.9)
        assigned = tracker.assign([right, left])
        assert assigned[0] is left and assigned[1] is right


def track(frames=30, velocity=(6.0, 0.0)):
    keypoints = np.stack([template_hand((300 + velocity[0] * t, 300 + velocity[1] * t))
                          for t in range(frames)])
    return keypoints, np.full((frames, 21), 0.9), np.ones(frames, bool)


def test_weights_follow_confidence_squared_and_bone_products():
    keypoints, confidence, present = track()
    confidence[:, 8] = 0.5
    w = supervision_weights(keypoints, confidence, present, WeightParams())
    np.testing.assert_allclose(w["joint"][:, 8], 0.25)
    np.testing.assert_allclose(w["joint"][:, 0], 0.81)
    np.testing.assert_allclose(w["bone"][:, 7], 0.9 * 0.5)  # bone 7 = index DIP -> tip
    assert not w["flags"].any(), "steady fast motion is no outlier"
    np.testing.assert_allclose(w["sample"], confidence.mean(1))


def test_planted_temporal_jump_is_down_weighted_but_its_neighbours_are_not():
    keypoints, confidence, present = track()
    keypoints[10, 8] += [60.0, 0.0]  # index tip jumps 0.6 hand sizes for one frame
    w = supervision_weights(keypoints, confidence, present, WeightParams(outlier_factor=0.1))
    assert w["flags"][10, 8] & TEMPORAL_OUTLIER
    assert w["joint"][10, 8] == pytest.approx((0.9 * 0.1) ** 2)
    flagged = np.argwhere(w["flags"] & TEMPORAL_OUTLIER)
    assert {tuple(f) for f in flagged} <= {(9, 8), (10, 8), (11, 8)}
    assert w["joint"][10, 4] == pytest.approx(0.81)


def test_impossible_bone_and_low_confidence_gate():
    keypoints, confidence, present = track(frames=5)
    keypoints[2, 12] = keypoints[2, 11] + [0.0, -250.0]  # middle tip 2.5 hand sizes from its DIP
    confidence[3, 4] = 0.05
    present[4] = False
    w = supervision_weights(keypoints, confidence, present, WeightParams())
    assert w["flags"][2, 12] & IMPLAUSIBLE and w["flags"][2, 11] & IMPLAUSIBLE
    assert not (w["flags"][2, :11] & IMPLAUSIBLE).any()
    assert w["sample"][3] == 0.0 and w["sample"][0] > 0.8
    assert w["sample"][4] == 0.0 and not w["joint"][4].any()


@pytest.mark.parametrize("text", ["hflip", "rot+20", "rot-15,scale0.8", "hflip,rot+10"])
def test_augmentation_maps_points_there_and_back(text):
    aug = Augmentation.parse(text)
    points = template_hand()
    transform = crop_transform(points.mean(0), 250.0, 256, aug)
    np.testing.assert_allclose(apply(invert(transform), apply(transform, points)), points,
                               atol=1e-9)
    inside = apply(transform, points)
    assert inside.min() >= 0 and inside.max() <= 255
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augmentation.parse("blur")
