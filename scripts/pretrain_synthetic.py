"""Build the synthetic-pretrained network the train stage starts from by default.

    .venv/bin/python scripts/pretrain_synthetic.py [--hands 4096] [--epochs 14] [--width 16]
        [--tilt 90] [--coupled 0] [--out models/network/assets/synthetic_w16.pt]

Renders ``--hands`` synthetic right hands (``models.synthetic``: poses inside the joint
limits, a ``--coupled`` share of them with each finger's joints bending together, random
shapes, skin tones and light, up to ``--tilt`` degrees from palm or back facing the camera,
any in-plane angle, framed as the pipeline frames detected hands) over background crops of
frames of ``right_hand_office.mp4`` and the stereo pair (``../shared/data``; those frames
contain a real hand, which a crop sometimes includes: a distractor, never a label). Then it
trains the network with the train stage's objective on the exact 2D and 3D labels
(``models.training.pretrain``), scores it on held-out synthetic hands over another video's
frames, and writes the checkpoint (float16: half the bytes; loading casts back) with its
sha256. Deterministic: fixed seeds and a fixed torch thread count, so the same command on the
same machine and library versions writes the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import time
from dataclasses import asdict
from pathlib import Path

import torch

from handlabel.models.hand.anatomy import rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.metrics.keypoints3d import summarise_3d
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render import make_renderer
from handlabel.models.synthetic import SyntheticHands
from handlabel.models.training.batches import Augmentation
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.pretrain import PRETRAIN_WEIGHTS, synthetic_crops
from handlabel.models.training.trainer import Trainer, TrainSettings, network_state
from handlabel.storage.backgrounds import background_frames

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TRAIN_VIDEOS = ["videos/right_hand_office.mp4", "stereo/cam0.mp4", "stereo/cam1.mp4"]
EVAL_VIDEO = "videos/gesture_mjpg_320x240.avi"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "models/network/assets/synthetic_w16.pt"


def generator(videos: list[str], seed: int, args) -> SyntheticHands:
    return SyntheticHands(DefaultHandModel(), make_renderer("deodr"),
                          background_frames([str(DATA / v) for v in videos], per_video=24),
                          rest_skeleton(), size=args.size, seed=seed, max_tilt_deg=args.tilt,
                          crop_margin=args.margin, coupled_fraction=args.coupled)


def held_out_score(net: S2HandNet, args) -> dict:
    test = synthetic_crops(generator([EVAL_VIDEO], args.seed + 1, args),
                           args.eval)
    pred = predict_crops(net, test.images, test.K, args.size)
    row = summarise_3d(pred.joints_3d.numpy().astype(float), test.teacher.numpy())
    row["2d_px"] = float((pred.joints_2d - test.keypoints).norm(dim=-1).mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hands", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--eval", type=int, default=256)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="crop and input side, px")
    parser.add_argument("--margin", type=float, default=1.6, help="detect.crop_margin")
    parser.add_argument("--tilt", type=float, default=90.0,
                        help="largest tilt from palm or back facing the camera, degrees")
    parser.add_argument("--coupled", type=float, default=0.0,
                        help="fraction of hands whose finger joints bend together")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--weight", nargs=2, action="append", default=[],
                        metavar=("LOSS", "W"), help="override a loss weight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    data = synthetic_crops(generator(TRAIN_VIDEOS, args.seed, args),
                           args.hands)
    print(f"{args.hands} synthetic hands rendered in {time.perf_counter() - started:.0f} s",
          flush=True)
    hand = DefaultHandModel()
    net = S2HandNet(hand, NetworkSpec(encoder_width=args.width))
    weights = {**PRETRAIN_WEIGHTS, **{k: float(w) for k, w in args.weight}}
    settings = TrainSettings(epochs=args.epochs, input_size=args.size, learning_rate=args.lr,
                             render_size=args.size // 2, weights=weights,
                             seed=args.seed, lr_milestones=(int(args.epochs * 0.7),),
                             augmentation=Augmentation(hue=0.03))  # as the shipped file was made
    trainer = Trainer(net, settings, model_limit_frames(hand))
    for _ in range(args.epochs):
        m = trainer.train_epoch(data)
        print(f"epoch {m['epoch'] + 1}/{args.epochs}: 2D {m['reprojection_px']:.2f} px, "
              f"branch {m['branch_px']:.2f} px, teacher 3D {m['loss_teacher_3d']:.4f}, "
              f"{m['seconds']:.0f} s", flush=True)
    score = held_out_score(net, args)
    print(f"held-out synthetic hands ({args.eval}, {EVAL_VIDEO} backgrounds, seed "
          f"{args.seed + 1}): PA-MPJPE {score['pa_mpjpe_mm']:.2f} mm, MPJPE "
          f"{score['mpjpe_mm']:.2f} mm, 2D {score['2d_px']:.2f} px")
    buffer = io.BytesIO()
    half = {k: v.half() if v.is_floating_point() else v for k, v in network_state(net).items()}
    options = {k: v for k, v in vars(args).items() if k not in ("out", "weight")}
    torch.save({"net": half, "spec": asdict(net.spec), "epoch": args.epochs,
                "input_size": args.size,
                "pretraining": {**options, "weights": weights, "held_out": score}}, buffer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buffer.getvalue())
    print(f"wrote {args.out} ({len(buffer.getvalue()) / 1e6:.1f} MB) sha256 "
          f"{hashlib.sha256(buffer.getvalue()).hexdigest()} in "
          f"{(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
