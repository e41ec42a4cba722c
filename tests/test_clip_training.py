"""S2HAND(V) clip training: the clip losses on cases with known answers, clips that never span
a gap, one augmentation per clip, and a short clip training on rendered synthetic sequences
that smooths the network's output (the train stage's clips: test_train_stage.py)."""

from __future__ import annotations

import math

import numpy as np
import roma
import torch

from handlabel.config import LossWeights
from handlabel.models.detection_noise import DetectionNoise
from handlabel.models.hand.anatomy import rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.losses import temporal
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render import make_renderer
from handlabel.models.synthetic import SyntheticHands
from handlabel.models.synthetic_video import synthetic_clips
from handlabel.models.training.batches import Augmentation, HandCrops, make_batch
from handlabel.models.training.clips import clip_windows, sample_clip_rows
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.setup import initialise_from_file, pretrained_checkpoint
from handlabel.models.training.trainer import Trainer, TrainSettings
from handlabel.storage.backgrounds import background_frames

from .conftest import GESTURE_AVI

T = 6
SIZE = 128


def _constant_speed(clips: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(C*T, 3) global and (C*T, 15, 3) joint rotations turning at constant speeds."""
    torch.manual_seed(0)
    start = roma.random_rotvec(clips * 16).reshape(clips, 1, 16, 3)
    speed = 0.2 * torch.randn(clips, 1, 16, 3)
    steps = torch.arange(T, dtype=torch.float32).reshape(1, T, 1, 1)
    rotations = roma.rotvec_composition([steps * speed, start.expand(-1, T, -1, -1)])
    rotations = rotations.reshape(clips * T, 16, 3).double()
    return rotations[:, 0], rotations[:, 1:], torch.arange(clips * T).double() % T / 30


def test_motion_loss_is_zero_at_any_constant_rotation_speed_and_grows_with_a_jerk():
    orient, pose, times = _constant_speed()
    valid = torch.ones(len(times), dtype=torch.bool)
    assert temporal.motion_loss(orient, pose, times, valid, T) < 1e-10
    jerked = pose.clone()
    jerked[3, 4] = roma.rotvec_composition([torch.tensor([0.0, 0.0, 0.3]).double(),
                                            jerked[3, 4]])
    assert temporal.motion_loss(orient, jerked, times, valid, T) > 1e-4


def test_motion_loss_reads_q_and_minus_q_as_one_rotation():
    orient, pose, times = _constant_speed()
    valid = torch.ones(len(times), dtype=torch.bool)
    angle = pose.norm(dim=-1, keepdim=True)
    other_way = pose * (1 - 2 * math.pi / angle)  # the same rotation, the far way round
    flipped = torch.where(torch.arange(len(pose))[:, None, None] % 2 == 0, other_way, pose)
    assert temporal.motion_loss(orient, flipped, times, valid, T) < 1e-10


def test_padding_frames_of_a_short_clip_do_not_count():
    orient, pose, times = _constant_speed()
    valid = torch.ones(len(times), dtype=torch.bool)
    valid[T - 2 : T] = False  # the first clip's last two frames are padding
    wild = pose.clone()
    wild[T - 2 : T] = roma.random_rotvec(2 * 15).reshape(2, 15, 3).double()
    assert temporal.motion_loss(orient, wild, times, valid, T) < 1e-10
    assert temporal.motion_loss(orient, wild, times, torch.ones_like(valid), T) > 1e-3


def test_shape_consistency_pulls_a_planted_outlier_frame_and_not_the_others():
    betas = torch.zeros(2 * T, 10)
    betas[2, 3] = 2.0  # one frame of the first clip disagrees
    betas.requires_grad_(True)
    trust = torch.ones(2 * T)
    valid = torch.ones(2 * T, dtype=torch.bool)
    loss = temporal.consistency_loss(betas, trust, valid, T)
    loss.backward()
    grad = betas.grad.norm(dim=-1)
    assert loss > 0 and grad[2] > 4 * grad[[0, 1, 3, 4, 5]].max()
    assert grad[T:].max() == 0, "the second clip agrees: no gradient"
    untrusted = trust.clone()
    untrusted[2] = 0.0
    assert temporal.consistency_loss(betas, untrusted, valid, T) < 1e-12


def test_clips_never_span_a_gap_or_a_track_change_and_sampling_keeps_them_whole():
    track = np.array(["a/0"] * 7 + ["a/1"] * 3)
    frame = np.array([0, 1, 2, 3, 5, 6, 7, 10, 11, 12])  # frame 4 missing in track a/0
    windows, valid = clip_windows(track, frame, 3)
    for window, real in zip(windows, valid, strict=True):
        rows = window[real]
        assert len(set(track[rows])) == 1
        assert np.all(np.diff(frame[rows]) == 1)
    assert set(windows[valid].tolist()) == set(range(10)), "every hand is in a clip"
    strided, _ = clip_windows(track, frame, 2, stride=2)
    assert all(np.all(np.diff(frame[w]) == 2) for w in strided if w[0] != w[1])
    rows = sample_clip_rows(track, frame, 3, 1, max_samples=3, seed=0)
    assert len(rows) == 3 and np.all(np.diff(frame[rows]) == 1)


def test_every_frame_of_a_clip_gets_the_same_augmentation():
    n, size = 8, 32
    crops = HandCrops(torch.full((n, size, size, 3), 128, dtype=torch.uint8),
                      torch.rand(n, 21, 2) * size, torch.ones(n, 21), torch.ones(n),
                      torch.eye(3).expand(n, 3, 3).clone(), times=torch.arange(n) / 30.0)
    batch = make_batch(crops, torch.arange(n), size, torch.device("cpu"), Augmentation(),
                       torch.Generator().manual_seed(0), clip_length=4)
    rotations = batch.K[:, :2, :2].reshape(2, 4, 2, 2)
    assert torch.allclose(rotations, rotations[:, :1].expand(-1, 4, -1, -1))
    assert not torch.allclose(rotations[0, 0], rotations[1, 0])
    colours = batch.images.mean((1, 2, 3)).reshape(2, 4)
    assert torch.allclose(colours, colours[:, :1].expand(-1, 4), atol=1e-6)


def test_module_examples():
    import doctest

    from handlabel.models.training import clips

    result = doctest.testmod(clips)
    assert result.attempted > 0 and result.failed == 0



def _acceleration_mm(net: S2HandNet, clips) -> float:
    """Mean norm of the second difference of the root-relative predicted joints, mm/frame^2
    (the truth's own is far smaller: the motion is smooth)."""
    joints = predict_crops(net, clips.crops.images, clips.crops.K, SIZE).joints_3d.double()
    joints = (joints - joints[:, :1]).reshape(len(np.unique(clips.track)), -1, 21, 3)
    return float(1000 * (joints[:, 2:] - 2 * joints[:, 1:-1] + joints[:, :-2]).norm(dim=-1)
                 .mean())


def _trained(clips, clip_length: int) -> S2HandNet:
    hand = DefaultHandModel()
    torch.manual_seed(0)
    net = S2HandNet(hand, NetworkSpec(encoder_width=16))
    initialise_from_file(net, pretrained_checkpoint())
    weights = {**LossWeights().model_dump(), "photometric": 0.0, "mean_colour": 0.0}
    settings = TrainSettings(epochs=3, batch_size=16, input_size=SIZE, weights=weights,
                             lr_milestones=(3,), augmentation=None)
    trainer = Trainer(net, settings, model_limit_frames(hand))
    data = clips.training_set(clip_length)
    for _ in range(settings.epochs):
        trainer.train_epoch(data)
    return net


def test_a_short_clip_training_lowers_the_acceleration_of_the_networks_output():
    generator = SyntheticHands(DefaultHandModel(), make_renderer("deodr"),
                               background_frames([str(GESTURE_AVI)], per_video=4),
                               rest_skeleton(), size=SIZE, seed=5, crop_margin=1.6)
    clips = synthetic_clips(generator, DetectionNoise.gaussian(0.05, 0.8), 2, 24, seed=5,
                            dropout=0.0)
    single, clip = _trained(clips, 1), _trained(clips, 4)
    assert _acceleration_mm(clip, clips) < 0.8 * _acceleration_mm(single, clips)
