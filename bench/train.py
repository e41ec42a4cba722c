"""Seconds per S2HAND training step on this machine, split by part, so the slow part shows.

    .venv/bin/python bench/train.py [--batch 32] [--size 224] [--width 64 16] [--repeats 3]

Each part is timed forward + backward on its own, with the real shapes of a step: encoder and
heads (ResNet-18 layout at the given widths, 2D branch, texture and light heads), hand model
(default hand, 801 vertices), renderer (DEODR at the given size), and the losses (all of
METHOD.md section 1, including the photometric SSIM, on given tensors). The last rows are
whole optimiser steps with every loss on. Median of the repeats.
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch
from timing import median_seconds

from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.losses.objective import S2HandObjective, Supervision
from handlabel.models.losses.photometric import photometric_loss
from handlabel.models.losses.s2hand import DEFAULT_WEIGHTS, mean_colour_loss
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render import light_from_params, make_renderer
from handlabel.models.training.trainer import Trainer, TrainSettings

GEOMETRY_WEIGHTS = {k: v for k, v in DEFAULT_WEIGHTS.items()
                    if k not in ("photometric", "mean_colour")}




def batch(n: int, size: int) -> Supervision:
    torch.manual_seed(0)
    focal = 1.2 * size
    K = torch.tensor([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]])
    return Supervision(torch.rand(n, size, size, 3), torch.rand(n, 21, 2) * size,
                       torch.rand(n, 21), torch.ones(n), K.expand(n, 3, 3).clone())


def part_times(net: S2HandNet, target: Supervision, repeats: int, render_size: int) -> dict:
    hand, renderer = net.hand_model, make_renderer("deodr")
    with torch.no_grad():
        pred = net(target.images, target.K)

    def encoder():
        net.zero_grad()
        pooled, low = net.features(target.images)
        _heat, branch = net.branch(low, target.images.shape[1])
        albedo, light = net.appearance(low)
        params = net.regressor(pooled)
        (pooled.sum() + branch.sum() + albedo.sum() + light.sum()
         + sum(v.sum() for v in params.values())).backward()

    def hand_model():
        pose = pred.hand_pose.clone().requires_grad_(True)
        out = hand(pred.global_orient, pose, pred.betas)
        (out.vertices.sum() + out.joints.sum()).backward()

    def render():
        vertices = pred.vertices.clone().requires_grad_(True)
        size = render_size
        K = target.K.clone()
        K[:, :2] *= size / target.images.shape[1]
        out = renderer.render(vertices, hand.faces, pred.albedo, K, size, size,
                              light_from_params(pred.light))
        (out.image.sum() + out.silhouette.sum()).backward()

    def losses():
        fields = {k: getattr(pred, k).clone().requires_grad_(True)
                  for k in ("joints_2d", "joints_3d", "branch_2d", "hand_pose", "betas",
                            "vertices", "albedo")}
        geometry(type(pred)(**{**pred.__dict__, **fields}), target)["total"].backward()
        size = render_size
        rendered = torch.rand(target.images.shape[0], size, size, 3, requires_grad=True)
        mask = torch.rand(target.images.shape[0], size, size)
        images = target.images[:, :size, :size]
        (photometric_loss(rendered, images, mask, target.sample_weight)
         + mean_colour_loss(rendered, images, mask, target.sample_weight)).backward()

    geometry = S2HandObjective(hand.faces, model_limit_frames(hand), GEOMETRY_WEIGHTS)
    return {"encoder + heads + 2D branch": median_seconds(encoder, repeats, warmup=True),
            "hand model": median_seconds(hand_model, repeats, warmup=True),
            f"renderer (DEODR, {render_size} px)": median_seconds(render, repeats, warmup=True),
            "losses (all, on a given render)": median_seconds(losses, repeats, warmup=True)}


def step_time(net: S2HandNet, target: Supervision, repeats: int, render_size: int,
              weights: dict) -> float:
    settings = TrainSettings(weights=weights, render_size=render_size,
                             input_size=target.images.shape[1])
    trainer = Trainer(net, settings, model_limit_frames(net.hand_model), make_renderer("deodr"))
    objective = trainer.objective(0)
    return median_seconds(lambda: trainer.step(objective, target), repeats, warmup=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=int, nargs="+", default=[64, 16])
    parser.add_argument("--render-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    target = batch(args.batch, args.size)
    hand = DefaultHandModel()
    rows = []
    for width in args.width:
        net = S2HandNet(hand, NetworkSpec(encoder_width=width))
        for part, seconds in part_times(net, target, args.repeats, args.render_size).items():
            rows.append({"encoder width": width, "part": part, "seconds": seconds})
        rows.append({"encoder width": width, "part": "whole step, all losses",
                     "seconds": step_time(net, target, args.repeats, args.render_size,
                                          DEFAULT_WEIGHTS)})
        rows.append({"encoder width": width, "part": "whole step, no rendered losses",
                     "seconds": step_time(net, target, args.repeats, args.render_size,
                                          GEOMETRY_WEIGHTS)})
    table = pd.DataFrame(rows)
    table["ms per hand"] = 1000 * table["seconds"] / args.batch
    print(f"batch {args.batch}, {args.size} px input, render {args.render_size} px, "
          f"{torch.get_num_threads()} torch threads, forward + backward")
    print(table.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
