"""Pretraining on synthetic hands: crops framed as the pipeline frames detected hands, the
shipped network documented and better than an untrained one on held-out synthetic hands, and
the script that builds it deterministic."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from handlabel.models.crops import square_box
from handlabel.models.hand.anatomy import rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.metrics.keypoints3d import summarise_3d
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render.deodr_backend import DeodrRenderer
from handlabel.models.synthetic import SyntheticHands
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.pretrain import synthetic_crops
from handlabel.models.training.setup import (
    PRETRAINED_WIDTH,
    initialise_from_file,
    pretrained_checkpoint,
)
from handlabel.storage.backgrounds import background_frames

from .conftest import GESTURE_AVI, ROOT


def framed_generator(seed: int) -> SyntheticHands:
    return SyntheticHands(DefaultHandModel(), DeodrRenderer(),
                          background_frames([str(GESTURE_AVI)], per_video=3), rest_skeleton(),
                          size=128, seed=seed, max_tilt_deg=90.0, crop_margin=1.6)


def test_synthetic_crops_are_framed_as_the_pipeline_frames_detections(sample):
    crops = synthetic_crops(framed_generator(3), 12)
    for keypoints in crops.keypoints.numpy():
        centre, side = square_box(keypoints, 1.6)
        assert 128 / 1.1 - 0.5 <= side <= 128 / 0.9 + 0.5  # the crop side jitter: +-10%
        assert np.abs(centre - 63.5).max() <= 0.05 * 128 + 0.5  # centre +-5% of the side
    assert (crops.confidence == 1).all() and crops.teacher.shape == (12, 21, 3)
    np.testing.assert_allclose(crops.teacher[..., :2] / crops.teacher[..., 2:] *
                               crops.K[:, None, [0, 1], [0, 1]] + crops.K[:, None, :2, 2],
                               crops.keypoints, atol=1e-3)


def _held_out_errors(net: S2HandNet) -> tuple[float, float]:
    test = synthetic_crops(framed_generator(7), 32)
    pred = predict_crops(net, test.images, test.K, 128)
    pa = summarise_3d(pred.joints_3d.numpy().astype(float), test.teacher.numpy())["pa_mpjpe_mm"]
    return float((pred.joints_2d - test.keypoints).norm(dim=-1).mean()), pa


def test_shipped_network_is_documented_and_beats_an_untrained_one(sample):
    path = pretrained_checkpoint()
    payload = path.read_bytes()
    assert len(payload) <= 10e6, f"{path}: {len(payload) / 1e6:.1f} MB, over the 10 MB limit"
    documented = (ROOT / "docs" / "components.md").read_text()
    assert hashlib.sha256(payload).hexdigest() in documented, (
        f"{path}: its sha256 is not the one in docs/components.md")
    torch.manual_seed(0)
    untrained = S2HandNet(DefaultHandModel(), NetworkSpec(encoder_width=PRETRAINED_WIDTH))
    pretrained = S2HandNet(DefaultHandModel(), NetworkSpec(encoder_width=PRETRAINED_WIDTH))
    assert "handlabel checkpoint" in initialise_from_file(pretrained, path)
    untrained_px, untrained_pa = _held_out_errors(untrained.eval())
    pretrained_px, pretrained_pa = _held_out_errors(pretrained.eval())
    assert pretrained_px < 0.8 * untrained_px
    assert pretrained_pa < untrained_pa


@pytest.mark.slow
def test_the_pretraining_script_writes_the_same_bytes_twice(sample, tmp_path):
    digests = []
    for name in ("a.pt", "b.pt"):
        out = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "pretrain_synthetic.py"), "--hands", "8",
             "--epochs", "1", "--eval", "4", "--threads", "1", "--out", str(tmp_path / name)],
            capture_output=True, text=True, timeout=300, check=True).stdout
        digests.append(re.search(r"sha256 ([0-9a-f]{64})", out).group(1))
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digests[-1]
    assert digests[0] == digests[1]
