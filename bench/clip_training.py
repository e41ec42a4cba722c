"""S2HAND(V) clip training against single-frame training, on rendered synthetic sequences with
known motion (CPU).

    .venv/bin/python bench/clip_training.py [--train-sequences 24] [--eval-sequences 8]
        [--frames 32] [--epochs 4] [--clip 4] [--seeds 0] [--only TEXT ...] [--weight LOSS W]

Sequences: ``models.synthetic_video`` (smooth joint, rotation and camera motion; one shape,
skin and light per sequence; crops framed like detections; the detector's 2D error profile
measured on ``../shared/data/labelled/`` replayed with persistence; a simulated teacher 3D;
dropouts). Training sequences have backgrounds from ``right_hand_office.mp4`` and seed
1000 + s; evaluation sequences ``gesture_mjpg_320x240.avi`` and seed 2000 + s: the sets share
nothing. Every variant starts from the shipped pretrained network and trains with the train
stage's default losses (the demo preset: 128 px, photometric rendered at 64 px by DEODR), on
the same detected frames, for the same number of epochs; a clip variant sees the frames as
clips of ``--clip`` frames (so the same samples, grouped). Reports, on the evaluation
sequences' detected frames: MPJPE (root-relative) and PA-MPJPE in mm, ACC (acceleration
error of the root-relative joints, mm/frame^2), the spread of each bone's length within a
track (mm), and the 2D error of the projected joints (px).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accuracy import EVAL_VIDEO, TRAIN_VIDEO, _acceleration_error, measured_noise

from handlabel.config import LossWeights
from handlabel.models.detectors.schema import BONES
from handlabel.models.hand.anatomy import rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.losses.objective import CLIP_LOSSES
from handlabel.models.metrics.keypoints3d import summarise_3d
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render import make_renderer
from handlabel.models.synthetic import SyntheticHands
from handlabel.models.synthetic_video import SyntheticClips, synthetic_clips
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.setup import initialise_from_file, pretrained_checkpoint
from handlabel.models.training.trainer import Trainer, TrainSettings
from handlabel.storage.backgrounds import background_frames

VARIANTS = {
    "single-frame (T=1)": (1, ()),
    "clip, all S2HAND(V) losses": (None, ()),
    "clip, no motion loss": (None, ("motion",)),
    "clip, no shape & texture consistency": (None, ("shape_consistency",
                                                    "texture_consistency")),
    "clip, no camera smoothness": (None, ("camera_smoothness",)),
    "clip, no S2HAND(V) losses": (None, CLIP_LOSSES),
}


def sequences(video: Path, count: int, frames: int, seed: int, size: int, noise
              ) -> SyntheticClips:
    generator = SyntheticHands(DefaultHandModel(), make_renderer("deodr"),
                               background_frames([str(video)], per_video=16), rest_skeleton(),
                               size=size, seed=seed, crop_margin=1.6)
    return synthetic_clips(generator, noise, count, frames, seed)


def score(net: S2HandNet, test: SyntheticClips, size: int) -> dict:
    keep = np.flatnonzero(test.detected)
    pred = predict_crops(net, test.crops.images[keep], test.crops.K[keep], size)
    joints, truth = pred.joints_3d.numpy().astype(float), test.truth[keep].numpy().astype(float)
    row = summarise_3d(joints, truth)
    relative, true_relative = joints - joints[:, :1], truth - truth[:, :1]
    accelerations, spreads = [], []
    for track in np.unique(test.track[keep]):
        mine = test.track[keep] == track
        frame = test.frame[keep][mine]
        full = np.full((test.frame.max() + 1, 21, 3), np.nan)
        true_full = full.copy()
        full[frame], true_full[frame] = relative[mine], true_relative[mine]
        valid = np.zeros(len(full), bool)
        valid[frame] = True
        accelerations.append(_acceleration_error(np.nan_to_num(full), np.nan_to_num(true_full),
                                                 valid))
        parents, children = np.array(BONES).T
        bones = np.linalg.norm(joints[mine][:, children] - joints[mine][:, parents], axis=-1)
        spreads.append(1000 * bones.std(0).mean())
    px = (pred.joints_2d - torch.from_numpy(project_truth(test, keep))).norm(dim=-1).mean()
    return {"MPJPE mm": row["mpjpe_mm"], "PA-MPJPE mm": row["pa_mpjpe_mm"],
            "ACC mm/f^2": float(np.nanmean(accelerations)),
            "bone spread mm": float(np.mean(spreads)), "2D px": float(px)}


def project_truth(test: SyntheticClips, keep: np.ndarray) -> np.ndarray:
    truth, K = test.truth[keep], test.crops.K[keep]
    pixels = torch.einsum("nij,nkj->nki", K, truth)
    return (pixels[..., :2] / pixels[..., 2:]).numpy()


def train_variant(train: SyntheticClips, clip_length: int, off: tuple[str, ...], args
                  ) -> S2HandNet:
    hand = DefaultHandModel()
    torch.manual_seed(0)
    net = S2HandNet(hand, NetworkSpec(encoder_width=16))
    initialise_from_file(net, pretrained_checkpoint())
    weights = {**LossWeights().model_dump(), **{k: float(v) for k, v in args.weight}}
    for name in off:
        weights[name] = 0.0
    settings = TrainSettings(epochs=args.epochs, input_size=args.size, render_size=args.size // 2,
                             weights=weights, lr_milestones=(max(args.epochs - 1, 1),))
    trainer = Trainer(net, settings, model_limit_frames(hand), make_renderer("deodr"))
    data = train.training_set(clip_length)
    for _ in range(args.epochs):
        trainer.train_epoch(data)
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-sequences", type=int, default=24)
    parser.add_argument("--eval-sequences", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--clip", type=int, default=4, help="frames per clip (T)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="+", help="run only the variants whose name contains "
                        "one of these")
    parser.add_argument("--weight", nargs=2, action="append", default=[],
                        metavar=("LOSS", "W"), help="override a loss weight (all variants)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    noise = measured_noise()
    rows = []
    for seed in args.seeds:
        train = sequences(TRAIN_VIDEO, args.train_sequences, args.frames, 1000 + seed,
                          args.size, noise)
        test = sequences(EVAL_VIDEO, args.eval_sequences, args.frames, 2000 + seed, args.size,
                         noise)
        print(f"seed {seed}: {int(train.detected.sum())} detected training frames in "
              f"{args.train_sequences} sequences, {int(test.detected.sum())} evaluation frames",
              flush=True)
        before = S2HandNet(DefaultHandModel(), NetworkSpec(encoder_width=16))
        initialise_from_file(before, pretrained_checkpoint())
        rows.append({"seed": seed, "variant": "pretrained, not trained on these",
                     "minutes": 0.0, **score(before, test, args.size)})
        for name, (length, off) in VARIANTS.items():
            if args.only and not any(part in name for part in args.only):
                continue
            started = time.perf_counter()
            net = train_variant(train, length or args.clip, off, args)
            rows.append({"seed": seed, "variant": name,
                         "minutes": (time.perf_counter() - started) / 60,
                         **score(net, test, args.size)})
            print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"), flush=True)
    if len(args.seeds) > 1:
        mean = pd.DataFrame(rows).drop(columns="seed").groupby("variant", sort=False).mean()
        print("\nmean over seeds\n" + mean.to_markdown(floatfmt=".2f"))


if __name__ == "__main__":
    main()
