"""S2HAND losses on cases with known values: zero at the target, growing the right way."""

from __future__ import annotations

import pytest
import torch

from handlabel.models.losses.s2hand import (
    DEFAULT_WEIGHTS,
    bone_direction_loss,
    branch_2d_loss,
    consistency_2d3d_loss,
    mean_colour_loss,
    reprojection_loss,
    robust_distance,
    scale_prior_loss,
    shape_prior_loss,
    texture_outlier_loss,
)

torch.manual_seed(0)
KEYPOINTS = torch.rand(2, 21, 2) * 200
CONFIDENCE = torch.rand(2, 21) * 0.8 + 0.2


def test_default_weights_are_methods():
    assert DEFAULT_WEIGHTS["reprojection"] == 1e-3 and DEFAULT_WEIGHTS["photometric"] == 5e-3
    assert len(DEFAULT_WEIGHTS) == 11


def test_robust_distance_is_quadratic_then_linear_and_continuous():
    d = torch.tensor([0.0, 2.0, 5.0 - 1e-6, 5.0, 9.0])
    values = robust_distance(d)
    assert values[1].item() == pytest.approx(0.4) and values[4].item() == pytest.approx(6.5)
    assert values[2].item() == pytest.approx(values[3].item(), abs=1e-5)


def test_reprojection_is_zero_at_the_detection_and_normalised_by_weights():
    assert reprojection_loss(KEYPOINTS, KEYPOINTS, CONFIDENCE).item() == 0
    shifted = KEYPOINTS + torch.tensor([3.0, 4.0])  # 5 px everywhere
    assert reprojection_loss(shifted, KEYPOINTS, CONFIDENCE).item() == pytest.approx(2.5)
    assert reprojection_loss(shifted, KEYPOINTS, CONFIDENCE * 0.5).item() == pytest.approx(2.5)
    farther = KEYPOINTS + torch.tensor([6.0, 8.0])
    assert reprojection_loss(farther, KEYPOINTS, CONFIDENCE) > 2.5


def test_low_confidence_joints_matter_less():
    wrong_tip = KEYPOINTS.clone()
    wrong_tip[:, 8] += 50.0
    trusted = CONFIDENCE.clone()
    doubted = CONFIDENCE.clone()
    doubted[:, 8] = 0.01
    assert reprojection_loss(wrong_tip, KEYPOINTS, doubted) < reprojection_loss(
        wrong_tip, KEYPOINTS, trusted) / 10


def test_bone_direction_ignores_scale_and_sees_rotation():
    centre = KEYPOINTS.mean(1, keepdim=True)
    scaled = (KEYPOINTS - centre) * 1.7 + centre
    assert bone_direction_loss(scaled, KEYPOINTS, CONFIDENCE).item() == pytest.approx(0, abs=1e-6)
    rotated = torch.stack([-KEYPOINTS[..., 1], KEYPOINTS[..., 0]], -1)  # 90 degrees
    assert bone_direction_loss(rotated, KEYPOINTS, CONFIDENCE).item() == pytest.approx(2.0,
                                                                                      abs=1e-4)


def test_branch_and_consistency():
    assert branch_2d_loss(KEYPOINTS, KEYPOINTS, CONFIDENCE).item() == 0
    assert branch_2d_loss(KEYPOINTS + 2.0, KEYPOINTS, CONFIDENCE).item() == pytest.approx(8.0)
    assert consistency_2d3d_loss(KEYPOINTS, KEYPOINTS).item() == 0
    assert consistency_2d3d_loss(KEYPOINTS + torch.tensor([0.0, 10.0]),
                                 KEYPOINTS).item() == pytest.approx(7.5)


def test_scale_and_shape_priors():
    joints = torch.zeros(1, 21, 3)
    joints[0, 10, 1] = 0.0282
    assert scale_prior_loss(joints).item() == pytest.approx(0, abs=1e-7)
    joints[0, 10, 1] = 0.0382
    assert scale_prior_loss(joints).item() == pytest.approx(0.01, abs=1e-7)
    assert shape_prior_loss(torch.zeros(2, 10)).item() == 0
    assert shape_prior_loss(torch.ones(2, 10)).item() == 1


def test_mean_colour_and_texture_outliers():
    image = torch.rand(2, 16, 16, 3)
    mask = torch.ones(2, 16, 16)
    assert mean_colour_loss(image, image, mask, torch.ones(2)).item() == pytest.approx(0)
    assert mean_colour_loss(image + 0.1, image, mask, torch.ones(2)).item() == pytest.approx(0.1)
    uniform = torch.full((1, 100, 3), 0.5) + 0.01 * torch.randn(1, 100, 3)
    assert texture_outlier_loss(uniform).item() < 1e-4
    spotted = uniform.clone()
    spotted[0, 7] = torch.tensor([1.0, 0.0, 1.0])
    assert texture_outlier_loss(spotted) > 100 * texture_outlier_loss(uniform)


def test_scale_prior_reference_is_the_hand_models_own_mean_hand():
    import torch

    from handlabel.models.hand.default import DefaultHandModel
    from handlabel.models.hand.limits import rest_middle_proximal_length

    hand = DefaultHandModel()
    reference = rest_middle_proximal_length(hand)
    joints = hand(torch.zeros(1, 3), torch.zeros(1, 15, 3), torch.zeros(1, 10)).joints
    assert 0.04 < reference < 0.06  # an anatomical middle proximal phalanx, not MANO's 2.82 cm
    assert scale_prior_loss(joints, reference).item() == pytest.approx(0, abs=1e-7)
    assert scale_prior_loss(joints * 0.5, reference).item() == pytest.approx(reference / 2,
                                                                            rel=1e-5)
