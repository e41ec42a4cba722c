"""How accurate the self-supervised model gets, measured honestly on this machine (CPU).

    .venv/bin/python bench/accuracy.py synthetic [--epochs 30] [--train 1024] [--eval 256]
    .venv/bin/python bench/accuracy.py real [--epochs 30]

synthetic: hands from ``models.synthetic`` (palm or back towards the camera, tilted up to
60 degrees, any in-plane angle), with detections simulated from the detector's measured error
and confidence on ``../shared/data/labelled/`` (measured first, printed). Training hands have
backgrounds from ``right_hand_office.mp4``, evaluation hands from
``gesture_mjpg_320x240.avi`` and other seeds: the sets share nothing. Reports MPJPE, PA-MPJPE
and AUC (0-50 mm) of the untrained and trained networks for METHOD.md's ablation, and the
2D error of the simulated teacher and of the student.

real: trains on the detected, weighted hand crops of the two sample videos (a store built by
``handlabel run``), then evaluates on ``../shared/data/labelled/`` (never trained on):
teacher (MediaPipe) vs student 2D errors on the same detected hands, and 3D errors on the
samples that carry 3D joints.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from handlabel.config import HandlabelConfig, TrainConfig
from handlabel.models.detection_noise import DetectionNoise
from handlabel.models.hand.anatomy import rest_skeleton
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.metrics.keypoints2d import confidence_error_correlation
from handlabel.models.metrics.keypoints3d import summarise_3d
from handlabel.models.network import NetworkSpec, S2HandNet
from handlabel.models.render import make_renderer
from handlabel.models.synthetic import SyntheticHands
from handlabel.models.training.batches import HandCrops
from handlabel.models.training.prediction import predict_crops
from handlabel.models.training.trainer import Trainer, TrainSettings
from handlabel.storage.backgrounds import background_frames
from handlabel.storage.labelled import read_labelled_manifest

DATA = Path("../shared/data")
LABELLED = DATA / "labelled/manifest.json"
TRAIN_VIDEO = DATA / "videos/right_hand_office.mp4"
EVAL_VIDEO = DATA / "videos/gesture_mjpg_320x240.avi"
PRIORS = {"reprojection": 1e-3, "scale": 0.1, "joint_angle": 0.1, "shape": 1e-2, "laplacian": 0.1}
ABLATION = {
    "joints + priors": PRIORS,
    "+ bone direction": {**PRIORS, "bone_direction": 0.1},
    "+ 2D branch, 2D-3D consistency": {**PRIORS, "bone_direction": 0.1, "branch_2d": 1e-3,
                                       "consistency_2d3d": 2e-4},
    "+ photometric (all losses)": {**PRIORS, "bone_direction": 0.1, "branch_2d": 1e-3,
                                   "consistency_2d3d": 2e-4, "photometric": 5e-3,
                                   "mean_colour": 1e-3, "texture_outliers": 5e-3},
}


def measured_noise() -> DetectionNoise:
    from handlabel.tasks.detect import detector_from_config
    from handlabel.tasks.evaluate_keypoints import evaluate_keypoints

    detector = detector_from_config(HandlabelConfig().detect)
    try:
        _, joints = evaluate_keypoints(read_labelled_manifest(LABELLED), detector)
    finally:
        detector.close()
    found = joints[joints["detected"]]
    spearman = confidence_error_correlation(found["confidence"].to_numpy(float),
                                            found["error_norm"].to_numpy(float))
    print(f"detector noise measured on {LABELLED} ({found['id'].nunique()} detected hands): "
          f"median error {found['error_norm'].median():.3f} hand sizes, mean "
          f"{found['error_norm'].mean():.3f}; mean confidence {found['confidence'].mean():.2f}; "
          f"Spearman(confidence, error) {spearman:.3f}")
    return DetectionNoise.from_joint_table(joints)


def synthetic_set(video: Path, n: int, seed: int, size: int, noise: DetectionNoise):
    generator = SyntheticHands(DefaultHandModel(), make_renderer("deodr"),
                               background_frames([str(video)], per_video=16), rest_skeleton(),
                               size=size, seed=seed, max_tilt_deg=60.0)
    batches = [generator.sample(min(64, n - i)) for i in range(0, n, 64)]
    truth = {k: torch.cat([getattr(b, k) for b in batches]) for k in
             ("images", "joints_3d", "joints_2d", "K")}
    detected, confidence = noise.simulate(truth["joints_2d"].numpy(), np.random.default_rng(seed))
    crops = HandCrops((truth["images"] * 255).round().to(torch.uint8),
                      torch.tensor(detected, dtype=torch.float32),
                      torch.tensor(confidence, dtype=torch.float32),
                      torch.tensor((confidence.min(1) > 0.1) * confidence.mean(1),
                                   dtype=torch.float32), truth["K"])
    return crops, truth


def evaluate(net: S2HandNet, crops: HandCrops, truth: dict, input_size: int) -> dict:
    pred = predict_crops(net, crops.images, crops.K, input_size)
    row = summarise_3d(pred.joints_3d.numpy().astype(float), truth["joints_3d"].numpy())
    row["student_2d_px"] = float((pred.joints_2d - truth["joints_2d"]).norm(dim=-1).mean())
    return row


def run_synthetic(args) -> None:
    noise = measured_noise()
    train, _ = synthetic_set(TRAIN_VIDEO, args.train, 1, args.size, noise)
    test, truth = synthetic_set(EVAL_VIDEO, args.eval, 2, args.size, noise)
    teacher = float((test.keypoints - truth["joints_2d"]).norm(dim=-1).mean())
    print(f"train: {args.train} synthetic hands on {TRAIN_VIDEO.name} backgrounds, seed 1; "
          f"eval: {args.eval} on {EVAL_VIDEO.name} backgrounds, seed 2; {args.size} px; "
          f"simulated teacher 2D error on eval {teacher:.2f} px")
    rows = []
    variants = [(name, weights, True) for name, weights in ABLATION.items()]
    variants.append(("all losses, no confidence weighting", ABLATION[
        "+ photometric (all losses)"], False))
    if args.only:
        variants = [v for v in variants if args.only in v[0]]
    for name, weights, weighted in variants:
        data = train if weighted else HandCrops(train.images, train.keypoints,
                                                torch.ones_like(train.confidence),
                                                torch.ones_like(train.sample_weight), train.K)
        rows.append(train_and_score(name, weights, data, test, truth, args))
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"), flush=True)


def train_and_score(name, weights, data, test, truth, args) -> dict:
    torch.manual_seed(0)
    hand = DefaultHandModel()
    net = S2HandNet(hand, NetworkSpec(encoder_width=args.width))
    before = evaluate(net, test, truth, args.size)
    settings = TrainSettings(epochs=args.epochs, input_size=args.size, render_size=args.size // 2,
                             weights=weights, lr_milestones=(int(args.epochs * 0.7),))
    trainer = Trainer(net, settings, model_limit_frames(hand), make_renderer("deodr"))
    started = time.perf_counter()
    for _ in range(args.epochs):
        trainer.train_epoch(data)
    after = evaluate(net, test, truth, args.size)
    return {"losses": name, "minutes": (time.perf_counter() - started) / 60,
            "MPJPE before": before["mpjpe_mm"], "MPJPE": after["mpjpe_mm"],
            "PA-MPJPE before": before["pa_mpjpe_mm"], "PA-MPJPE": after["pa_mpjpe_mm"],
            "AUC before": before["auc_0_50"], "AUC": after["auc_0_50"],
            "PA-AUC": after["pa_auc_0_50"], "student 2D px": after["student_2d_px"]}


def run_real(args) -> None:
    from handlabel.flows.pipeline import run_pipeline
    from handlabel.storage.store import DatasetStore
    from handlabel.tasks.detect import detector_from_config
    from handlabel.tasks.evaluate_model import evaluate_model, summarise_model
    from handlabel.tasks.trained_model import load_trained_model

    train = TrainConfig(epochs=args.epochs, encoder_width=args.width, input_size=args.size,
                        render_size=args.size // 2, max_samples=args.train,
                        lr_milestones=[int(args.epochs * 0.7)])
    config = HandlabelConfig(train=train)
    state = run_pipeline([str(TRAIN_VIDEO), str(EVAL_VIDEO)], args.store, config)
    print(f"pipeline: {state.type.value} {state.message}")
    store = DatasetStore(args.store, create=False)
    metrics = store.model().read_metrics()
    print(metrics[["epoch", "reprojection_px", "branch_px", "seconds"]].to_markdown(index=False))
    net, input_size = load_trained_model(store)
    detector = detector_from_config(config.detect)
    try:
        rows = evaluate_model(read_labelled_manifest(LABELLED), detector, net, input_size)
    finally:
        detector.close()
    print(f"trained on {store.model().attrs['samples']} hands of {TRAIN_VIDEO.name} and "
          f"{EVAL_VIDEO.name}; evaluated on {LABELLED}")
    print(summarise_model(rows).to_markdown(index=False, floatfmt=".2f"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["synthetic", "real"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train", type=int, default=1024, help="training hands (at most)")
    parser.add_argument("--eval", type=int, default=256, help="synthetic evaluation hands")
    parser.add_argument("--size", type=int, default=128, help="network input size")
    parser.add_argument("--width", type=int, default=16, help="encoder width")
    parser.add_argument("--store", default="bench-accuracy-store")
    parser.add_argument("--only", help="synthetic: run only the variants whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    (run_synthetic if args.part == "synthetic" else run_real)(args)


if __name__ == "__main__":
    main()
