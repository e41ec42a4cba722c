"""A hand the detector lost is looked for again where its track predicts it."""

from __future__ import annotations

import numpy as np
import pytest

from handlabel.models.detectors.schema import HandDetection
from handlabel.models.tracking import SlotTracker
from handlabel.storage.labelled import read_labelled_manifest

from .conftest import DATA


def hand_at(x: float, y: float, side: str = "right", belief: float = 0.95) -> HandDetection:
    keypoints = np.array([[x, y], [x + 40, y + 60]] * 10 + [[x + 20, y + 30]], float)
    return HandDetection(keypoints, np.ones(21), side, belief, 0.95)


def test_a_lost_hand_is_predicted_on_at_its_last_velocity_until_the_search_gives_up():
    tracker = SlotTracker(search_frames=6)
    for t in range(3):
        tracker.assign([hand_at(100 + 4 * t, 50)])  # 4 px per frame to the right
    assert tracker.lost() == {}
    for age in range(1, 8):
        tracker.assign([])
        lost = tracker.lost()
        if age > 6:
            assert lost == {}
            continue
        shift = 4 * min(age, 3)  # carried on for 3 frames, then held
        np.testing.assert_allclose(lost[1], [108 + shift, 50, 148 + shift, 110])


def test_a_hand_found_again_keeps_its_slot_and_no_search_without_search_frames():
    tracker = SlotTracker(search_frames=4)
    tracker.assign([hand_at(100, 50)])
    tracker.assign([])
    tracker.found_again(1, hand_at(103, 50))
    assert tracker.lost() == {}
    assert tracker.assign([hand_at(106, 50, "left", 0.6)])[1] is not None  # unsure flip
    plain = SlotTracker()
    plain.assign([hand_at(100, 50)])
    plain.assign([])
    assert plain.lost() == {}


@pytest.fixture(scope="module")
def detector():
    from handlabel.models.detectors.mediapipe import MediaPipeHandDetector

    detector = MediaPipeHandDetector()
    yield detector
    detector.close()


def test_a_search_finds_a_small_hand_the_whole_frame_misses_and_nothing_where_none_is(detector):
    from handlabel.models.detectors.search import search_near

    samples = read_labelled_manifest(DATA / "labelled" / "manifest.json")
    sample = next(s for s in samples if s.id == "mmpose/panoptic/100587")  # 1280x720, 76 px
    rgb, truth = sample.load_rgb(), sample.keypoints[sample.visible]
    box = np.concatenate([truth.min(0), truth.max(0)])
    assert detector.detect_image(rgb) == []  # MediaPipe's palm detection on the frame
    found = search_near(detector, rgb, box + np.array([6, -4, 6, -4]))  # a track's guess
    assert found is not None and found.extras["searched"]
    error = np.linalg.norm(found.keypoints[sample.visible] - truth, axis=1).mean()
    assert error < 0.1 * (box[2:] - box[:2]).max()
    empty = np.array([40, 40, 116, 116], float)  # the frame's top-left corner: no hand
    assert search_near(detector, rgb, empty) is None
