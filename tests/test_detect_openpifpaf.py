"""The OpenPifPaf backend (optional extra): decoding of hand-made fields with known keypoints,
and the whole detector on a real frame with a randomly initialised wholebody network whose
fields are replaced by a known person's (no checkpoint can be downloaded)."""

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


def hand_made_fields(points: np.ndarray, skeleton: list[tuple[int, int]],
                     stride: int = STRIDE, shape: tuple[int, int] = SHAPE):
    """CIF and CAF fields as the network would emit them for one person at ``points``."""
    import torch

    h, w = shape
    cif = torch.zeros((len(points), 5, h, w))
    for k, (x, y) in enumerate(points.tolist()):
        i, j = round(x / stride), round(y / stride)
        cif[k, 1, j - 1 : j + 2, i - 1 : i + 2] = 0.9
        cif[k, 2, j - 1 : j + 2, i - 1 : i + 2] = x / stride
        cif[k, 3, j - 1 : j + 2, i - 1 : i + 2] = y / stride
        cif[k, 4, j - 1 : j + 2, i - 1 : i + 2] = 1.0
    caf = torch.zeros((len(skeleton), 8, h, w))
    for c, (a, b) in enumerate(skeleton):
        (xa, ya), (xb, yb) = points[a - 1].tolist(), points[b - 1].tolist()
        i, j = round((xa + xb) / 2 / stride), round((ya + yb) / 2 / stride)
        caf[c, 1, j - 1 : j + 2, i - 1 : i + 2] = 0.9
        for component, value in zip(range(2, 8), (xa, ya, xb, yb, 8.0, 8.0), strict=True):
            caf[c, component, j - 1 : j + 2, i - 1 : i + 2] = value / stride
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


def test_a_hand_in_the_networks_output_reaches_the_frame_as_a_detection(sample):
    """The whole detector on a real frame: OpenPifPaf's preprocessing, its randomly
    initialised wholebody network, decoder and inverse transform, then the conversion to
    hands. No trained checkpoint can be had here and a random network finds no hand, so
    the network's fields are replaced, at their real shapes, by those of one person at
    known points of the processed image; the hands must come back at those points."""
    from handlabel.storage.video import iter_frames

    from .conftest import GESTURE_AVI

    detector = OpenPifPafHandDetector(OpenPifPafOptions(random_init_base="shufflenetv2k16"))
    frame = next(iter(iter_frames(str(GESTURE_AVI))))[0]
    processor, real_fields = detector.predictor.processor, []
    skeleton = wholebody_head_metas(import_openpifpaf())[1].skeleton
    points = np.random.default_rng(5).uniform([24, 24], [296, 216], (133, 2))

    def planted_fields(model, image_batch, device=None):
        fields = real_fields_batch(model, image_batch, device=device)  # the network runs
        real_fields.append([f.shape for f in fields[0]])
        _, _, h, w = fields[0][0].shape
        stride = round((image_batch.shape[-1] - 1) / (w - 1))
        return [list(hand_made_fields(points, skeleton, stride, (h, w)))]

    real_fields_batch = processor.fields_batch
    processor.fields_batch = planted_fields
    hands = {h.handedness: h for h in detector.detect_image(frame)}
    assert real_fields, "the network did not run"
    assert set(hands) == {"left", "right"}
    np.testing.assert_allclose(hands["left"].keypoints, points[LEFT_HAND], atol=1.0)
    np.testing.assert_allclose(hands["right"].keypoints, points[RIGHT_HAND], atol=1.0)
    assert all(0.5 < h.score <= 1 and (h.confidence > 0.5).all() for h in hands.values())


def test_missing_local_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pkl"):
        OpenPifPafHandDetector(OpenPifPafOptions(checkpoint=str(tmp_path / "nope.pkl")))
