"""The synthetic hand generator: exact labels, plausible poses, real backgrounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handlabel.models.geometry import project
from handlabel.models.hand.anatomy import rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import joint_limit_penalty, limits_deg
from handlabel.models.render.deodr_backend import DeodrRenderer
from handlabel.models.synthetic import SyntheticHands
from handlabel.storage.backgrounds import background_frames

from .conftest import GESTURE_AVI


@pytest.fixture(scope="module")
def generator(sample):
    backgrounds = background_frames([str(GESTURE_AVI)], per_video=3)
    return lambda seed: SyntheticHands(DefaultHandModel(), DeodrRenderer(), backgrounds,
                                       rest_skeleton(), size=128, seed=seed)


def test_samples_carry_exact_consistent_labels(generator):
    batch = generator(0).sample(6)
    assert batch.images.shape == (6, 128, 128, 3) and batch.masks.shape == (6, 128, 128)
    assert batch.images.min() >= 0 and batch.images.max() <= 1
    np.testing.assert_allclose(batch.joints_2d, project(batch.joints_3d, batch.K), atol=1e-4)
    assert (batch.joints_3d[..., 2] > 0.3).all()
    inside = (batch.joints_2d >= 0).all(-1) & (batch.joints_2d < 128).all(-1)
    assert inside.float().mean() > 0.95
    # the projected joints lie on the rendered hand
    xy = batch.joints_2d.round().long().clamp(0, 127)
    on_mask = batch.masks[torch.arange(6)[:, None], xy[..., 1], xy[..., 0]]
    assert on_mask.float().mean() > 0.8
    assert (batch.masks.float().mean(dim=(1, 2)) > 0.02).all()


def test_poses_are_inside_the_anatomical_limits(generator):
    gen = generator(1)
    batch = gen.sample(4)
    limits = torch.tensor(np.radians(limits_deg()), dtype=torch.float32)
    assert (joint_limit_penalty(batch.hand_pose, gen.frames, limits) < 1e-8).all()
    assert batch.betas.abs().max() <= 2


def test_same_seed_same_samples(generator):
    first, second = generator(7).sample(2), generator(7).sample(2)
    torch.testing.assert_close(first.images, second.images)
    torch.testing.assert_close(first.joints_3d, second.joints_3d)


def test_needs_backgrounds():
    with pytest.raises(ValueError, match="background"):
        SyntheticHands(DefaultHandModel(), DeodrRenderer(), [], rest_skeleton())
