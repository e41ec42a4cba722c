"""The S2HAND objective: switches, known values, rendering only when needed; augmentation
keeps image, keypoints and camera consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handlabel.models.camera import scale_intrinsics
from handlabel.models.geometry import project
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.losses.objective import S2HandObjective, Supervision
from handlabel.models.losses.s2hand import DEFAULT_WEIGHTS
from handlabel.models.training.batches import Augmentation, HandCrops, make_batch

from .networks import CROP_K, tiny_network

SIZE = 64


@pytest.fixture(scope="module")
def setup():
    hand = DefaultHandModel()
    net = tiny_network(hand)
    K = CROP_K.expand(2, 3, 3).clone()
    with torch.no_grad():
        pred = net(torch.rand(2, SIZE, SIZE, 3), K)
    return hand, pred, K


class NoRenderer:
    def render(self, *args, **kwargs):
        raise AssertionError("rendered although no rendered loss is on")


def test_only_switched_on_losses_are_computed_and_the_total_is_their_weighted_sum(setup):
    hand, pred, K = setup
    weights = {"reprojection": 2.0, "shape": 0.5, "photometric": 0.0}
    objective = S2HandObjective(hand.faces, model_limit_frames(hand), weights, NoRenderer())
    target = Supervision(torch.rand(2, SIZE, SIZE, 3), pred.joints_2d + 3.0,
                         torch.ones(2, 21), torch.ones(2), K)
    terms = objective(pred, target)
    assert set(terms) == {"reprojection", "shape", "total"}
    torch.testing.assert_close(terms["total"], 2.0 * terms["reprojection"] + 0.5 * terms["shape"])
    # every joint 3*sqrt(2) px off (< 5 px): robust distance d^2/10 = 1.8
    torch.testing.assert_close(terms["reprojection"], torch.tensor(1.8))


def test_2d_terms_vanish_when_the_prediction_matches_the_detections(setup):
    hand, pred, K = setup
    names = ("reprojection", "bone_direction", "branch_2d")
    objective = S2HandObjective(hand.faces, model_limit_frames(hand),
                                {n: DEFAULT_WEIGHTS[n] for n in names})
    exact = Supervision(torch.rand(2, SIZE, SIZE, 3), pred.joints_2d, torch.ones(2, 21),
                        torch.ones(2), K)
    assert float(objective(pred, exact)["reprojection"]) == 0.0
    assert float(objective(pred, exact)["bone_direction"]) < 1e-10
    off = Supervision(exact.images, pred.joints_2d + torch.randn(2, 21, 2) * 4, exact.confidence,
                      exact.sample_weight, K)
    assert all(float(objective(pred, off)[n]) > 0 for n in names)


def test_teacher_3d_loss_ignores_the_teachers_frame_and_size_and_trains_the_joints():
    hand = DefaultHandModel()
    net = tiny_network(hand, seed=1)
    K = CROP_K.expand(2, 3, 3).clone()
    pred = net(torch.rand(2, SIZE, SIZE, 3), K)
    objective = S2HandObjective(hand.faces, model_limit_frames(hand), {"teacher_3d": 1.0})
    turn = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    same = 0.8 * pred.joints_3d.detach() @ turn.T + 0.1  # another frame and size, same hand
    confidence = torch.ones(2, 21)
    args = (torch.rand(2, SIZE, SIZE, 3), pred.joints_2d.detach(), confidence, torch.ones(2), K)
    assert float(objective(pred, Supervision(*args, same, confidence))["teacher_3d"]) < 1e-6
    bent = same.clone()
    bent[:, 4] += 0.03  # the thumb tip elsewhere
    terms = objective(pred, Supervision(*args, bent, confidence))
    assert float(terms["teacher_3d"]) > 1e-3
    terms["total"].backward()
    reached = [p.grad.abs().sum() for p in net.regressor.parameters() if p.grad is not None]
    assert reached and sum(reached) > 0, "the loss trains the pose and shape heads"
    assert "teacher_3d" not in objective(pred.detach(), Supervision(*args))  # no teacher: off


def test_unknown_loss_names_and_missing_renderer_are_refused(setup):
    hand, _, _ = setup
    with pytest.raises(ValueError, match="unknown losses"):
        S2HandObjective(hand.faces, model_limit_frames(hand), {"reprojektion": 1.0})
    with pytest.raises(ValueError, match="need a renderer"):
        S2HandObjective(hand.faces, model_limit_frames(hand), {"photometric": 1.0})


def test_rescaled_camera_projects_onto_the_resized_pixels():
    K = torch.tensor([[[100.0, 0, 63.5], [0, 100, 63.5], [0, 0, 1]]])
    points = torch.tensor([[[0.05, -0.02, 0.5]]])
    at_128 = project(points, K)
    at_64 = project(points, scale_intrinsics(K, 0.5))
    torch.testing.assert_close(at_64, (at_128 + 0.5) * 0.5 - 0.5)


def test_rotation_augmentation_moves_image_keypoints_and_camera_together():
    size, n = 64, 4
    images = torch.zeros(n, size, size, 3, dtype=torch.uint8)
    keypoints = torch.tensor(np.random.default_rng(0).uniform(12, 52, (n, 21, 2)),
                             dtype=torch.float32)
    spot = keypoints[:, 0].round().long()
    for i in range(n):  # a bright 3x3 spot on the wrist keypoint
        images[i, spot[i, 1] - 1 : spot[i, 1] + 2, spot[i, 0] - 1 : spot[i, 0] + 2] = 255
    keypoints[:, 0] = spot.float()
    K = torch.tensor([[70.0, 0, 20], [0, 70, 40], [0, 0, 1]]).expand(n, 3, 3).clone()
    points = torch.cat([torch.linalg.solve(K, torch.cat([keypoints, torch.ones(n, 21, 1)], -1
                                                         ).transpose(1, 2)).transpose(1, 2)],
                       1) * 0.6  # 3D points on the rays through the keypoints
    data = HandCrops(images, keypoints, torch.ones(n, 21), torch.ones(n), K)
    augmentation = Augmentation(rotation_deg=90, brightness=0, contrast=0, saturation=0, hue=0)
    batch = make_batch(data, torch.arange(n), size, torch.device("cpu"), augmentation,
                       torch.Generator().manual_seed(3))
    torch.testing.assert_close(project(points, batch.K), batch.keypoints, atol=1e-3, rtol=0)
    for i in range(n):
        brightest = torch.nonzero(batch.images[i].sum(-1) == batch.images[i].sum(-1).max())
        centre = brightest.float().mean(0).flip(0)
        assert (centre - batch.keypoints[i, 0]).norm() < 1.0
    assert not torch.allclose(batch.keypoints, keypoints), "the draw rotated something"


def test_label_losses_vanish_on_the_labels_and_count_each_label_by_its_weight(setup):
    """The job's own labels as targets (a round of fit and training): zero where the
    prediction is the label; a label of weight 0 teaches nothing; another label's
    articulation or its projection costs."""
    hand, pred, K = setup
    objective = S2HandObjective(hand.faces, model_limit_frames(hand),
                                {"labels_2d": 1.0, "labels_3d": 1.0})

    def terms(labels, weight):
        return objective(pred, Supervision(torch.rand(2, SIZE, SIZE, 3), pred.joints_2d,
                                           torch.ones(2, 21), torch.ones(2), K,
                                           labels=labels, label_weight=weight))

    exact = pred.joints_3d.detach()
    same = terms(exact, torch.ones(2))
    assert float(same["labels_2d"]) < 1e-6 and float(same["labels_3d"]) < 1e-6
    bent = exact.clone()
    bent[1, 5:] += torch.tensor([0.0, 0.02, 0.0])  # every finger but the thumb moved 2 cm
    assert float(terms(bent, torch.ones(2))["labels_2d"]) > 0.1
    assert float(terms(bent, torch.ones(2))["labels_3d"]) > 1e-3
    ignored = terms(bent, torch.tensor([1.0, 0.0]))  # the bent label carries no weight
    assert float(ignored["labels_2d"]) < 1e-6 and float(ignored["labels_3d"]) < 1e-6
