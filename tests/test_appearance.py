"""Colour evidence of occlusion (models/appearance.py, the weight stage's ``UNLIKE_HAND``):
a real hand image with a real-texture object slid over it, where the covered joints are
known, and a track with one joint covered for a few frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from handlabel.models.appearance import colour_distances, joint_colours
from handlabel.models.keypoints import hand_sizes
from handlabel.models.occluders import composite, covered, cut_occluder, plan_pass
from handlabel.models.weights import UNLIKE_HAND, WeightParams, supervision_weights
from handlabel.storage.labelled import read_labelled_manifest
from handlabel.storage.video import iter_frames

from .conftest import DATA

MUG_BOX = (744, 356, 904, 544)  # the blue mug of two_hands_coffee.mp4, frame 100


def mug():
    for i, (rgb, _) in enumerate(iter_frames(str(DATA / "videos" / "two_hands_coffee.mp4"))):
        if i == 100:
            return cut_occluder("mug", rgb, MUG_BOX, "blue")
    raise AssertionError("two_hands_coffee.mp4 has fewer than 101 frames")


@pytest.fixture(scope="module")
def occluded_clip():
    """40 frames of a labelled hand image drifting a few pixels, the mug passing over the
    hand in frames 12-27: colours at the true joints, the covered joints, the visible ones."""
    sample = read_labelled_manifest(DATA / "labelled" / "manifest.json")[0]
    image, points, visible = sample.load_rgb(), sample.keypoints.astype(float), sample.visible
    box = np.concatenate([points[visible].min(0), points[visible].max(0)])
    passing = plan_pass(np.random.default_rng(1), mug(), box, first=12, frames=16)
    size = float(hand_sizes(points, visible))
    colours, cover = [], []
    for t in range(40):
        shift = 2.0 * np.array([np.sin(t / 5), np.cos(t / 7)])
        moved = cv2.warpAffine(image, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
                               image.shape[1::-1], borderMode=cv2.BORDER_REFLECT_101)
        centre = passing.centre(t)
        frame = moved if centre is None else composite(moved, passing.occluder, centre + shift)
        colours.append(joint_colours(frame, points + shift, size))
        cover.append(covered(points + shift, passing.occluder,
                             None if centre is None else centre + shift))
    return np.array(colours), np.array(cover), visible


def test_joints_an_object_covers_look_unlike_their_hand_and_the_others_do_not(occluded_clip):
    colours, cover, visible = occluded_clip
    distance = colour_distances(colours, np.ones(len(colours), bool))
    unlike = distance > WeightParams().colour_outlier
    under, clear = cover & visible, ~cover & visible
    assert under.sum() >= 20, "the pass covers some joints"
    assert unlike[under].mean() >= 0.8
    assert unlike[clear].mean() <= 0.05
    assert not unlike[:12].any() and not unlike[28:].any(), "before and after the pass"


def test_a_covered_joint_loses_its_weight_and_is_flagged():
    frames = 30
    keypoints = np.tile(np.linspace(100.0, 200.0, 42).reshape(21, 2), (frames, 1, 1))
    confidence, present = np.full((frames, 21), 0.9), np.ones(frames, bool)
    rng = np.random.default_rng(0)
    skin = np.array([190, 140, 120]) + rng.integers(-6, 7, (frames, 21, 3))
    skin[10:14, 8] = (30, 60, 190)  # a blue mug over the index tip for 4 frames
    colours = skin.clip(0, 255).astype(np.uint8)
    w = supervision_weights(keypoints, confidence, present, WeightParams(), colours)
    unlike = (w["flags"] & UNLIKE_HAND) > 0
    assert unlike[10:14, 8].all() and unlike.sum() == 4
    assert w["joint"][10, 8] == pytest.approx((0.9 * WeightParams().outlier_factor) ** 2)
    assert w["joint"][9, 8] == pytest.approx(0.81)
    off = supervision_weights(keypoints, confidence, present,
                              WeightParams(colour_outlier=None), colours)
    assert not (off["flags"] & UNLIKE_HAND).any()


def test_colours_are_checked_for_shape():
    with pytest.raises(ValueError, match="frame"):
        joint_colours(np.zeros((10, 10), np.uint8), np.zeros((21, 2)), 50.0)
    with pytest.raises(ValueError, match="colours"):
        colour_distances(np.zeros((5, 21), np.uint8), np.ones(5, bool))


def test_a_mostly_covered_detection_is_left_to_the_track_and_flagged_interpolated(
        gesture_store, tmp_path):
    """On a copy of the gesture clip's store, frames 6-8 of the right hand marked covered on
    half their joints (as the weight stage marks a hand under an object), frame 9 on 3 joints
    (over ``covered_edge_share``, under ``covered_share``), frame 10 on one, frame 14 on 3
    away from any covered frame: the fit sees neither frames 6-8 nor, by hysteresis, frame 9
    (nor their detector 3D, unless ``covered_teacher`` is on);
    it labels them from the track as interpolated and calls none of their joints visible;
    frames 10 and 14 are fitted, their covered joints not visible. Without hysteresis frame 9
    is fitted, and with ``covered_share`` null every detection is."""
    import shutil

    from handlabel.config import FitConfig
    from handlabel.storage.store import DatasetStore
    from handlabel.tasks.hand_fit import fitted_window
    from handlabel.tasks.reconstruct import fit_reconstruct

    from .pipeline_runs import CONFIG

    shutil.copytree(gesture_store, tmp_path / "store")
    store = DatasetStore(str(tmp_path / "store"))
    video = store.manifest.table()["video_id"][0]
    right = 1
    present = store.stage(video, "detect").read("present")[:, right]
    assert present[5:16].all()
    flags = store.stage(video, "weight").group["flags"]
    marked = flags[:] & ~np.uint8(UNLIKE_HAND)  # only the marks below
    marked[6:9, right, :11] |= UNLIKE_HAND  # 11 of 21 joints: over the 0.3 share
    marked[[9, 14], right, :3] |= UNLIKE_HAND  # 3 of 21: over the 0.1 edge share only
    marked[10, right, :1] |= UNLIKE_HAND  # 1 of 21: under both
    flags[:] = marked

    arrays, unlike = fitted_window(store, video, right, 0, len(present), FitConfig())
    covered = np.isin(np.arange(len(present)), [6, 7, 8, 9])
    np.testing.assert_array_equal(arrays.present, present & ~covered)
    assert not arrays.teacher_only.any() and np.isnan(arrays.world[covered]).all()
    assert unlike[9, :3].all() and not unlike[9, 3:].any()
    kept, _ = fitted_window(store, video, right, 0, len(present),
                            FitConfig(covered_teacher=True))
    np.testing.assert_array_equal(kept.teacher_only, covered)  # their 3D still counts
    np.testing.assert_array_equal(kept.present, arrays.present)
    assert np.isfinite(kept.world[covered]).all()
    no_edge, _ = fitted_window(store, video, right, 0, len(present),
                               FitConfig(covered_edge_share=None))
    np.testing.assert_array_equal(no_edge.present, present & ~np.isin(np.arange(len(present)),
                                                                        [6, 7, 8]))
    fitted_all, _ = fitted_window(store, video, right, 0, len(present),
                                  FitConfig(covered_share=None))
    assert fitted_all.present[6:10].all()

    fit_reconstruct(store, video, CONFIG.reconstruct)
    labels = store.stage(video, "reconstruct")
    interpolated, visible = labels.read("interpolated")[:, right], labels.read("visible")[:, right]
    assert labels.read("present")[6:10, right].all() and interpolated[6:10].all()
    assert not interpolated[[5, 10, 14]].any() and not visible[6:10].any()
    assert not visible[10, :1].any() and not visible[14, :3].any()
