"""The GPU pass: what a CUDA machine buys, measured on the models/ layer alone.

    python3 bench/gpu.py [--hands 256] [--track-frames 120] [--out gpu.md]

Run by ``bench/gpu.sh`` (which installs the carried wheels first) on a machine lent by the
``device`` tool, or anywhere with ``--device cpu`` to check it. No store, Prefect or Dask:
the rows time what the pipeline's stages spend their time in, on synthetic hands with known
answers (random-noise backgrounds, so no video decoding either).

Rows:
- the device (name, memory) and torch's CUDA build;
- one training epoch of the ``full`` preset (ResNet-18 width 64, 224 px input and render,
  every loss, mixed precision on CUDA) over ``--hands`` synthetic crops, with each renderer
  that imports (DEODR renders on the CPU whatever the device; pytorch3d on the device);
- reconstruct's network inference, crops per second at batch 64 (the full preset's network);
- the sequence fit of one synthetic track of ``--track-frames`` frames on CUDA and on the
  CPU, with its 3D error against the known joints (the same answer on both is the check).
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import torch

from handlabel.models.detection_noise import DetectionNoise
from handlabel.models.fit.observe import track_observations
from handlabel.models.fit.sequence import FitWeights
from handlabel.models.fit.track import solve_track
from handlabel.models.hand.anatomy import rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.metrics.keypoints3d import summarise_3d
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render import make_renderer
from handlabel.models.synthetic import SyntheticHands
from handlabel.models.synthetic_motion import synthetic_sequence
from handlabel.models.training.batches import HandCrops
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.trainer import Trainer, TrainSettings

FULL = {"encoder_width": 64, "input_size": 224, "render_size": 224}  # config's full preset
FIT_STEPS, FIT_LR = 200, 0.02  # reconstruct.fit's defaults


def synthetic_crops(n: int, size: int, seed: int = 0) -> HandCrops:
    rng = np.random.default_rng(seed)
    backgrounds = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]
    generator = SyntheticHands(DefaultHandModel(), make_renderer("deodr"), backgrounds,
                               rest_skeleton(), size=size, seed=seed)
    parts = [generator.sample(min(64, n - start)) for start in range(0, n, 64)]
    images = torch.cat([(p.images * 255).round().to(torch.uint8) for p in parts])
    keypoints = torch.cat([p.joints_2d for p in parts])
    return HandCrops(images, keypoints, torch.ones(n, 21), torch.ones(n),
                     torch.cat([p.K for p in parts]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_epoch(data: HandCrops, renderer_name: str, device: torch.device) -> dict:
    torch.manual_seed(0)
    hand = DefaultHandModel()
    net = S2HandNet(hand, NetworkSpec(encoder_width=FULL["encoder_width"]))
    settings = TrainSettings(epochs=1, input_size=FULL["input_size"],
                             render_size=FULL["render_size"], lr_milestones=())
    trainer = Trainer(net, settings, model_limit_frames(hand),
                      make_renderer(renderer_name), device)
    sync(device)
    started = time.perf_counter()
    metrics = trainer.train_epoch(data)
    sync(device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "steps": metrics["steps"],
            "ms_per_hand": seconds / len(data.images) * 1000,
            "reprojection_px": metrics["reprojection_px"]}


def inference_rate(data: HandCrops, device: torch.device) -> float:
    torch.manual_seed(0)
    net = S2HandNet(DefaultHandModel(), NetworkSpec(encoder_width=FULL["encoder_width"]))
    with torch.no_grad():
        predict_crops(net, data.images[:64], data.K[:64], FULL["input_size"], device=device)
        sync(device)
        started = time.perf_counter()
        predict_crops(net, data.images, data.K, FULL["input_size"], device=device)
        sync(device)
    return len(data.images) / (time.perf_counter() - started)


def sequence_fit(frames: int, device: torch.device) -> dict:
    hand = DefaultHandModel().to(device)
    seq = synthetic_sequence(DefaultHandModel(), DetectionNoise.gaussian(0.02, 0.9), frames,
                             seed=100)
    obs, placed = track_observations(seq.keypoints, seq.confidence**2, seq.teacher,
                                     seq.teacher_confidence, seq.present, seq.times, seq.K,
                                     False, device=device)
    limit_frames = model_limit_frames(hand).to(device)
    sync(device)
    started = time.perf_counter()
    result, _ = solve_track(hand, obs, placed, None, None, limit_frames, FitWeights(),
                            FIT_STEPS, FIT_LR)
    sync(device)
    seconds = time.perf_counter() - started
    joints = result.joints.detach().cpu().numpy().astype(float)
    scores = summarise_3d(joints[seq.present], seq.joints_3d[seq.present])
    return {"seconds": seconds, "ms_per_frame": seconds / frames * 1000, **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=256)
    parser.add_argument("--track-frames", type=int, default=120)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=None, help="also write the table here (Markdown)")
    args = parser.parse_args()
    device = torch.device(args.device)
    lines = [f"torch {torch.__version__}, CUDA build {torch.version.cuda}, "
             f"available: {torch.cuda.is_available()}"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.append(f"device: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
                     f"{props.multi_processor_count} SMs")
    lines.append(f"CPU threads: {torch.get_num_threads()}\n")

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    for line in lines:
        print(line, flush=True)
    started = time.perf_counter()
    data = synthetic_crops(args.hands, FULL["input_size"])
    emit(f"{args.hands} synthetic 224 px crops made in {time.perf_counter() - started:.1f} s\n")
    emit("| run | device | seconds | per item | check |")
    emit("|---|---|--:|--:|---|")
    renderers = ["deodr"] + (["pytorch3d"] if importlib.util.find_spec("pytorch3d") else [])
    for name in renderers:
        row = training_epoch(data, name, device)
        emit(f"| full-preset epoch, {name} | {device} | {row['seconds']:.1f} | "
             f"{row['ms_per_hand']:.1f} ms/hand | {row['steps']} steps, reprojection "
             f"{row['reprojection_px']:.1f} px |")
    if "pytorch3d" not in renderers:
        emit("| full-preset epoch, pytorch3d | - | - | - | not installed (no wheel carried) |")
    rate = inference_rate(data, device)
    emit(f"| reconstruct inference, batch 64 | {device} | {len(data.images) / rate:.2f} | "
         f"{rate:.0f} crops/s | |")
    for where in dict.fromkeys([device, torch.device("cpu")]):
        row = sequence_fit(args.track_frames, where)
        emit(f"| sequence fit, {args.track_frames} frames, {FIT_STEPS} steps | {where} | "
             f"{row['seconds']:.1f} | {row['ms_per_frame']:.1f} ms/frame | PA-MPJPE "
             f"{row['pa_mpjpe_mm']:.2f} mm |")
    emit(f"\nReproduce: python3 bench/gpu.py --hands {args.hands} "
         f"--track-frames {args.track_frames} (bench/gpu.sh on a lent machine)")
    if args.out:
        with open(args.out, "w") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
