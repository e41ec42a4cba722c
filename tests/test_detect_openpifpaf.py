"""The OpenPifPaf backend (optional extra): decoding of hand-made fields with known keypoints,
and a randomly initialised wholebody network end to end (no checkpoint can be downloaded)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("openpifpaf") is None:  # imported only through import_openpifpaf
    pytest.skip("optional extra: scripts/install_openpifpaf.sh", allow_module_level=True)

from handlabel.models.detectors.openpifpaf import (
    LEFT_HAND,
    RIGHT_HAND,
    OpenPifPafHandDetector,
    OpenPifPafOptions,
    hands_from_wholebody,
    import_openpifpaf,
    wholebody_head_metas,
)

STRIDE = 8
SHAPE = (40, 48)  # field cells: 320 x 384 px


def known_person(seed: int = 3) -> np.ndarray:
    """133 keypoints at distinct, known pixel positions inside the image."""
    rng = np.random.default_rng(seed)
    return rng.uniform([16, 16], [360, 300], (133, 2))


def hand_made_fields(points: np.ndarray, skeleton: list[tuple[int, int]]):
    """CIF and CAF fields as the network would emit them for one person at ``points``."""
    import torch

    h, w = SHAPE
    cif = torch.zeros((len(points), 5, h, w))
    for k, (x, y) in enumerate(points.tolist()):
        i, j = round(x / STRIDE), round(y / STRIDE)
        cif[k, 1, j - 1 : j + 2, i - 1 : i + 2] = 0.9
        cif[k, 2, j - 1 : j + 2, i - 1 : i + 2] = x / STRIDE
        cif[k, 3, j - 1 : j + 2, i - 1 : i + 2] = y / STRIDE
        cif[k, 4, j - 1 : j + 2, i - 1 : i + 2] = 1.0
    caf = torch.zeros((len(skeleton), 8, h, w))
    for c, (a, b) in enumerate(skeleton):
        (xa, ya), (xb, yb) = points[a - 1].tolist(), points[b - 1].tolist()
        i, j = round((xa + xb) / 2 / STRIDE), round((ya + yb) / 2 / STRIDE)
        caf[c, 1, j - 1 : j + 2, i - 1 : i + 2] = 0.9
        for component, value in zip(range(2, 8), (xa, ya, xb, yb, 8.0, 8.0), strict=True):
            caf[c, component, j - 1 : j + 2, i - 1 : i + 2] = value / STRIDE
    return cif, caf


def test_hand_made_fields_decode_to_the_known_hands():
    openpifpaf = import_openpifpaf()
    cif_meta, caf_meta = wholebody_head_metas(openpifpaf)
    for index, meta in enumerate((cif_meta, caf_meta)):
        meta.head_index, meta.base_stride, meta.upsample_stride = index, STRIDE, 1
    decoder = openpifpaf.decoder.factory([cif_meta, caf_meta])
    points = known_person()
    people = decoder(list(hand_made_fields(points, caf_meta.skeleton)))
    assert len(people) == 1
    data = people[0].data
    np.testing.assert_allclose(data[:, :2], points, atol=0.5)

    hands = {h.handedness: h for h in hands_from_wholebody(data)}
    assert set(hands) == {"left", "right"}
    np.testing.assert_allclose(hands["left"].keypoints, points[LEFT_HAND], atol=0.5)
    np.testing.assert_allclose(hands["right"].keypoints, points[RIGHT_HAND], atol=0.5)
    assert (hands["left"].confidence > 0.5).all()


def test_hands_need_enough_visible_joints():
    data = np.zeros((133, 3))
    data[RIGHT_HAND] = np.column_stack([np.arange(21), np.arange(21), np.full(21, 0.8)])
    data[LEFT_HAND.start : LEFT_HAND.start + 3, 2] = 0.9  # 3 joints: not a hand
    hands = hands_from_wholebody(data)
    assert [h.handedness for h in hands] == ["right"]
    assert hands[0].score == pytest.approx(0.8) and hands[0].keypoints.shape == (21, 2)


def test_random_network_runs_end_to_end_on_a_frame(sample):
    from handlabel.storage.video import iter_frames

    from .conftest import GESTURE_AVI

    detector = OpenPifPafHandDetector(OpenPifPafOptions(random_init_base="shufflenetv2k16"))
    frames = [rgb for (rgb, _), _ in zip(iter_frames(str(GESTURE_AVI)), range(2), strict=False)]
    results = list(detector.detect_video(frames, [0.0, 0.033]))
    assert len(results) == 2
    for hands in results:  # untrained: usually nothing; whatever comes must fit the schema
        for hand in hands:
            assert hand.keypoints.shape == (21, 2) and hand.handedness in ("left", "right")


def test_missing_local_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pkl"):
        OpenPifPafHandDetector(OpenPifPafOptions(checkpoint=str(tmp_path / "nope.pkl")))
