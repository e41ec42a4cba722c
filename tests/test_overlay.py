"""The overlay's mesh drawing (``models/overlay.draw_mesh``) on a hand with a known place:
the mesh lands where the hand projects, only the crop's part of the frame is touched, it
matches blending over the whole frame, and a filled frame (no crop) draws nothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from handlabel.models.crops import crop_affine
from handlabel.models.geometry import project
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.network.s2hand import place_hand
from handlabel.models.overlay import MESH_OPACITY, draw_mesh
from handlabel.models.render import make_renderer

K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])
SHAPE = (480, 640, 3)


@pytest.fixture(scope="module")
def hand():
    model = DefaultHandModel()
    with torch.no_grad():
        vertices, _ = place_hand(model, torch.tensor([[0.0, 0.0, 0.3]]), torch.zeros(1, 15, 3),
                                 torch.zeros(1, model.n_shape),
                                 torch.tensor([[0.03, -0.02, 0.45]]), torch.ones(1))
    vertices = vertices[0].numpy()
    pixels = project(torch.tensor(vertices)[None],
                     torch.tensor(K, dtype=torch.float32)[None])[0].numpy()
    centre, side = pixels.mean(0), 1.3 * np.ptp(pixels, 0).max()
    box = np.concatenate([centre - side / 2, centre + side / 2])
    return model, vertices, pixels, box


def grey() -> np.ndarray:
    return np.full(SHAPE, 90, np.uint8)


def test_the_mesh_is_drawn_where_the_hand_projects_and_nowhere_outside_its_crop(hand):
    model, vertices, pixels, box = hand
    image = grey()
    draw_mesh(image, make_renderer("deodr"), model.faces, vertices, box, K, False)
    changed = (image != 90).any(-1)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 500
    assert xs.min() >= box[0] - 2 and xs.max() <= box[2] + 2
    assert ys.min() >= box[1] - 2 and ys.max() <= box[3] + 2
    # the hand's own silhouette: most projected vertices fall on drawn pixels
    inside = np.round(pixels).astype(int)
    assert changed[inside[:, 1], inside[:, 0]].mean() > 0.9


def test_blending_the_crops_region_matches_blending_the_whole_frame(hand):
    """The region-only blend against the straightforward one: the crop's render warped over
    the whole frame and blended everywhere (alpha 0 outside it)."""
    model, vertices, _, box = hand
    renderer = make_renderer("deodr")
    image = grey()
    draw_mesh(image, renderer, model.faces, vertices, box, K, False)

    from handlabel.models.overlay import MESH_ALBEDO, MESH_LIGHT
    from handlabel.models.render import light_from_params

    affine = crop_affine((box[:2] + box[2:]) / 2, float(box[2] - box[0]), 224, False)
    full = np.vstack([affine, [0.0, 0.0, 1.0]]) @ K
    out = renderer.render(torch.tensor(vertices, dtype=torch.float32)[None], model.faces,
                          torch.tensor(MESH_ALBEDO).expand(1, len(vertices), 3),
                          torch.tensor(full, dtype=torch.float32)[None], 224, 224,
                          light_from_params(torch.tensor([MESH_LIGHT])))
    inverse = cv2.invertAffineTransform(affine)
    rgb = cv2.warpAffine((out.image[0].clamp(0, 1).numpy() * 255).astype(np.float32), inverse,
                         SHAPE[1::-1], flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(out.silhouette[0].clamp(0, 1).numpy().astype(np.float32)
                           * MESH_OPACITY, inverse, SHAPE[1::-1], flags=cv2.INTER_LINEAR)
    expected = (grey() * (1 - alpha[..., None]) + rgb * alpha[..., None]).astype(np.uint8)
    assert np.abs(image.astype(int) - expected).max() <= 2


def test_a_filled_frame_without_a_crop_draws_nothing(hand):
    model, vertices, _, _ = hand
    image = grey()
    draw_mesh(image, make_renderer("deodr"), model.faces, vertices, np.full(4, np.nan), K, False)
    assert (image == 90).all()
