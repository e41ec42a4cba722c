"""Training: a short run on synthetic hands lowers the 3D error; resuming from a checkpoint
continues exactly as an uninterrupted run; the stage-wise schedule adds losses in thirds."""

from __future__ import annotations

import pytest
import torch

from handlabel.models.detection_noise import DetectionNoise
from handlabel.models.hand.anatomy import rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.metrics.keypoints3d import root_relative_errors
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render.deodr_backend import DeodrRenderer
from handlabel.models.synthetic import SyntheticHands
from handlabel.models.training.batches import Augmentation, HandCrops
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.setup import checkpoint_bytes, checkpoint_from_bytes
from handlabel.models.training.trainer import Trainer, TrainSettings, epoch_weights
from handlabel.storage.backgrounds import background_frames

from .conftest import GESTURE_AVI

SIZE = 64
GEOMETRY = {"reprojection": 1e-3, "bone_direction": 0.1, "scale": 0.1, "joint_angle": 0.1,
            "shape": 1e-2}


@pytest.fixture(scope="module")
def synthetic(sample):
    import numpy as np

    hand = DefaultHandModel()
    generator = SyntheticHands(hand, DeodrRenderer(), background_frames([str(GESTURE_AVI)], 3),
                               rest_skeleton(), size=SIZE, seed=5, max_tilt_deg=45)
    batch = generator.sample(32)
    keypoints, confidence = DetectionNoise.gaussian(0.01, 0.9).simulate(
        batch.joints_2d.numpy(), np.random.default_rng(0))
    crops = HandCrops((batch.images * 255).round().to(torch.uint8),
                      torch.tensor(keypoints, dtype=torch.float32),
                      torch.tensor(confidence, dtype=torch.float32), torch.ones(32), batch.K)
    return hand, crops, batch


def make_trainer(hand, weights, epochs, renderer=None, seed=0) -> Trainer:
    torch.manual_seed(seed)
    net = S2HandNet(hand, NetworkSpec(encoder_width=8, head_hidden=64, branch_channels=8,
                                      heatmap_size=16))
    settings = TrainSettings(epochs=epochs, batch_size=16, input_size=SIZE, render_size=32,
                             weights=weights, lr_milestones=(), seed=seed,
                             augmentation=Augmentation(rotation_deg=10))
    return Trainer(net, settings, model_limit_frames(hand), renderer)


def mpjpe(trainer: Trainer, crops: HandCrops, batch) -> float:
    pred = predict_crops(trainer.net, crops.images, crops.K, SIZE)
    return float(root_relative_errors(pred.joints_3d.numpy(), batch.joints_3d.numpy()).mean())


@pytest.mark.slow
def test_short_training_on_synthetic_hands_lowers_the_3d_error(synthetic):
    hand, crops, batch = synthetic
    trainer = make_trainer(hand, GEOMETRY, epochs=40)
    before = mpjpe(trainer, crops, batch)
    first = trainer.train_epoch(crops)
    for _ in range(39):
        last = trainer.train_epoch(crops)
    after = mpjpe(trainer, crops, batch)
    assert last["reprojection_px"] < 0.75 * first["reprojection_px"]
    assert after < 0.8 * before, (before, after)


def test_resuming_from_a_checkpoint_continues_exactly(synthetic):
    hand, crops, _ = synthetic
    weights = {**GEOMETRY, "branch_2d": 1e-3, "photometric": 5e-3, "mean_colour": 1e-3}
    straight = make_trainer(hand, weights, 2, DeodrRenderer())
    straight.train_epoch(crops)
    saved = checkpoint_bytes(straight.state_dict())
    straight.train_epoch(crops)

    resumed = make_trainer(hand, weights, 2, DeodrRenderer(), seed=0)  # a fresh network
    resumed.load_state_dict(checkpoint_from_bytes(saved))
    assert resumed.epoch == 1
    resumed.train_epoch(crops)
    for (name, a), b in zip(straight.net.state_dict().items(),
                            resumed.net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_stagewise_schedule_adds_losses_in_thirds():
    settings = TrainSettings(epochs=9, schedule="stagewise")
    assert "branch_2d" not in epoch_weights(settings, 0)
    assert "photometric" not in epoch_weights(settings, 2)
    assert "branch_2d" in epoch_weights(settings, 3) and "photometric" not in epoch_weights(
        settings, 5)
    assert epoch_weights(settings, 6) == settings.weights
