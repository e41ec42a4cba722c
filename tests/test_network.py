"""The S2HAND network: outputs, the 2D branch's soft-argmax, the camera, gradients to every
head, and loading torchvision-named encoder weights."""

from __future__ import annotations

import pytest
import torch

from handlabel.models.geometry import project
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.losses.objective import S2HandObjective, Supervision
from handlabel.models.losses.s2hand import DEFAULT_WEIGHTS
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.network.keypoint_branch import soft_argmax
from handlabel.models.network.s2hand import ANCHOR_JOINT, load_encoder_weights
from handlabel.models.render.deodr_backend import DeodrRenderer

SIZE = 64


@pytest.fixture(scope="module")
def hand():
    return DefaultHandModel()


def small_net(hand, width: int = 4) -> S2HandNet:
    torch.manual_seed(0)
    return S2HandNet(hand, NetworkSpec(encoder_width=width, head_hidden=32, branch_channels=8,
                                       heatmap_size=16))


def camera(n: int, focal: float = 80.0) -> torch.Tensor:
    K = torch.tensor([[focal, 0, (SIZE - 1) / 2], [0, focal, (SIZE - 1) / 2], [0, 0, 1.0]])
    return K.expand(n, 3, 3).clone()


def test_outputs_have_the_documented_shapes_and_are_consistent(hand):
    net = small_net(hand)
    out = net(torch.rand(3, SIZE, SIZE, 3), camera(3))
    assert out.vertices.shape == (3, 801, 3) and out.joints_3d.shape == (3, 21, 3)
    assert out.hand_pose.shape == (3, 15, 3) and out.betas.shape == (3, hand.n_shape)
    assert out.albedo.shape == (3, 801, 3) and out.light.shape == (3, 11)
    assert out.branch_2d.shape == (3, 21, 2) and out.heatmaps.shape == (3, 21, 16, 16)
    torch.testing.assert_close(out.joints_2d, project(out.joints_3d, camera(3)))
    assert (out.albedo >= 0).all() and (out.albedo <= 1).all()


def test_an_untrained_net_puts_the_hand_centred_in_the_crop_at_a_plausible_depth(hand):
    out = small_net(hand)(torch.rand(2, SIZE, SIZE, 3), camera(2))
    anchor = out.joints_2d[:, ANCHOR_JOINT]
    torch.testing.assert_close(anchor, torch.full_like(anchor, (SIZE - 1) / 2))
    extent = out.joints_2d.amax(1) - out.joints_2d.amin(1)
    assert (extent.amax(-1) > 0.3 * SIZE).all() and (extent.amax(-1) < SIZE).all()


def test_soft_argmax_finds_a_sharp_peak_at_its_pixel():
    heatmaps = torch.full((1, 2, 16, 16), -1e4)
    heatmaps[0, 0, 3, 10] = heatmaps[0, 1, 12, 1] = 1e4
    points = soft_argmax(heatmaps, image_size=64)
    # heatmap cell (x, y) covers image pixels [4x - 0.5, 4x + 3.5): its centre is 4x + 1.5
    torch.testing.assert_close(points[0], torch.tensor([[41.5, 13.5], [5.5, 49.5]]))


def test_every_head_gets_gradient_from_the_full_objective(hand):
    net = small_net(hand)
    n = 2
    target = Supervision(torch.rand(n, SIZE, SIZE, 3), torch.rand(n, 21, 2) * SIZE,
                         torch.rand(n, 21) * 0.5 + 0.5, torch.ones(n), camera(n))
    objective = S2HandObjective(hand.faces, model_limit_frames(hand), DEFAULT_WEIGHTS,
                                DeodrRenderer(), render_size=32)
    terms = objective(net(target.images, target.K), target)
    assert set(terms) == set(DEFAULT_WEIGHTS) | {"total", "unrendered"}
    assert int(terms["unrendered"]) == 0  # every mesh rendered: the photometric terms are real
    terms["total"].backward()
    for name in ("encoder", "regressor", "appearance", "branch"):
        module = getattr(net, name)
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0, f"no gradient reaches {name}"
    last = net.appearance.mlp[-1].weight.grad
    assert last[:-11].abs().sum() > 0 and last[-11:].abs().sum() > 0, "texture and light"


def test_encoder_has_torchvision_resnet18_names_and_loads_such_weights(hand):
    net = small_net(hand, width=64)
    names = set(net.encoder.state_dict())
    for expected in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
                     "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                     "layer4.1.bn2.weight"):
        assert expected in names
    source = {k: torch.randn_like(v.float()).to(v.dtype)
              for k, v in net.encoder.state_dict().items()}
    source["fc.weight"] = torch.zeros(1000, 512)  # an ImageNet classifier is ignored
    missing = load_encoder_weights(net, source)
    assert missing == []
    torch.testing.assert_close(net.encoder.layer3[1].conv2.weight, source["layer3.1.conv2.weight"])


def test_training_steps_on_one_thread_at_width_4_do_not_corrupt_memory():
    """A regression test, in its own process because the failure is an abort: the
    convolution backward on the permuted (channels-last strided) input corrupted the heap
    with one torch thread at width 4 ('free(): invalid next size'), every time."""
    import os
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from handlabel.models.hand.default import DefaultHandModel\n"
        "from handlabel.models.network import NetworkSpec, S2HandNet\n"
        "torch.set_num_threads(1); torch.manual_seed(0)\n"
        "net = S2HandNet(DefaultHandModel(), NetworkSpec(encoder_width=4))\n"
        "K = torch.tensor([[200.0, 0, 31.5], [0, 200, 31.5], [0, 0, 1]]).expand(8, 3, 3)\n"
        "for _ in range(10):\n"
        "    net(torch.rand(8, 64, 64, 3), K).betas.sum().backward()\n"
        "print('finite', all(torch.isfinite(p.grad).all() for p in net.parameters()\n"
        "                    if p.grad is not None))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={**os.environ,
                                            "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "finite True"
