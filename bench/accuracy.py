"""How accurate the self-supervised model gets, measured honestly on this machine (CPU).

    .venv/bin/python bench/accuracy.py synthetic [--epochs 30] [--train 1024] [--eval 256]
    .venv/bin/python bench/accuracy.py real [--epochs 30]
    .venv/bin/python bench/accuracy.py sequences [--sequences 8] [--frames 90] [--person-mm 8]
        [--first-seed 100] [--fit-teacher-3d 0.3 1 3]
    .venv/bin/python bench/accuracy.py teacher3d
    .venv/bin/python bench/accuracy.py teacher-loss --store demo-store [--weights 0 0.1 1]

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

sequences: the reconstruct stage's sequence fit on synthetic sequences with known motion
(``models.synthetic_motion``: smooth motion, the detector's 2D error profile measured on the
labelled images, dropouts, a simulated teacher 3D), held-out seeds 100.. (the fit's weights
were tuned on seeds 200-202). Teacher (the detections; the teacher 3D placed by PnP) against
the fit, with ablations, and the quality score's Spearman against the per-frame error. The
fit starts from the teacher alone here: the sequences have no images for the network. With
``--person-mm D`` each sequence's hand is a person whose rest joints sit about D mm from the
embedded hand model's (``synthetic_motion.hand_motion``), as real hands do; 0 (the default)
draws the model's own hand, the easy case.
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


def evaluate_labelled(store, config: HandlabelConfig) -> pd.DataFrame:
    """The store's trained network and the fit on the labelled images (``evaluate_model``)."""
    from handlabel.tasks.detect import detector_from_config
    from handlabel.tasks.evaluate_model import evaluate_model
    from handlabel.tasks.trained_model import load_trained_model

    net, input_size = load_trained_model(store)
    detector = detector_from_config(config.detect)
    try:
        return evaluate_model(read_labelled_manifest(LABELLED), detector, net, input_size,
                              reconstruct=config.reconstruct, detect=config.detect,
                              camera=config.ingest.camera)
    finally:
        detector.close()


def run_real(args) -> None:
    from handlabel.flows.pipeline import run_pipeline
    from handlabel.storage.store import DatasetStore
    from handlabel.tasks.evaluate_model import summarise_model

    train = TrainConfig(epochs=args.epochs, encoder_width=args.width, input_size=args.size,
                        render_size=args.size // 2, max_samples=args.train,
                        lr_milestones=[int(args.epochs * 0.7)])
    config = HandlabelConfig(train=train)
    state = run_pipeline([str(TRAIN_VIDEO), str(EVAL_VIDEO)], args.store, config)
    print(f"pipeline: {state.type.value} {state.message}")
    store = DatasetStore(args.store, create=False)
    metrics = store.model().read_metrics()
    print(metrics[["epoch", "reprojection_px", "branch_px", "seconds"]].to_markdown(index=False))
    rows = evaluate_labelled(store, config)
    print(f"trained on {store.model().attrs['samples']} hands of {TRAIN_VIDEO.name} and "
          f"{EVAL_VIDEO.name}; evaluated on {LABELLED}")
    print(summarise_model(rows).to_markdown(index=False, floatfmt=".2f"))


SEQUENCE_ABLATIONS = {
    "fit (default)": {},
    "no teacher 3D": {"teacher_3d": 0.0, "teacher_size": 0.0},
    "no temporal terms": {"rotation_acceleration": 0.0, "translation_acceleration": 0.0},
    "no joint limits": {"joint_angle": 0.0},
    "the model's skeleton (no track skeleton)": {"skeleton": 0.0},
}


def _acceleration_error(joints: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """ACC of the video hand literature: the mean distance between predicted and true joint
    accelerations (second differences, mm/frame^2), over frames whose neighbours are valid."""
    def second(x):
        return x[2:] - 2 * x[1:-1] + x[:-2]
    triples = valid[2:] & valid[1:-1] & valid[:-2]
    error = np.linalg.norm(second(joints) - second(truth), axis=-1)
    return float(1000 * error[triples].mean())


def run_sequences(args) -> None:
    from handlabel.config import ReconstructConfig
    from handlabel.models.fit.observe import track_observations
    from handlabel.models.fit.quality import track_quality
    from handlabel.models.fit.sequence import FitWeights
    from handlabel.models.fit.track import solve_track
    from handlabel.models.metrics.keypoints3d import procrustes_errors
    from handlabel.models.synthetic_motion import synthetic_sequence

    noise = measured_noise()
    hand = DefaultHandModel()
    limit_frames = model_limit_frames(hand)
    config = ReconstructConfig()
    fit = config.fit
    defaults = FitWeights(**fit.weights.model_dump())
    rows, quality_pairs = [], ([], [])
    ablations = SEQUENCE_ABLATIONS | {f"fit, teacher_3d {w:g}": {"teacher_3d": w}
                                      for w in args.fit_teacher_3d}
    seeds = range(args.first_seed, args.first_seed + args.sequences)
    for seed in seeds:
        seq = synthetic_sequence(hand, noise, args.frames, seed,
                                 skeleton_m=args.person_mm / 1000)
        present = seq.present
        obs, placed = track_observations(seq.keypoints, seq.confidence**2, seq.teacher,
                                         seq.teacher_confidence, present, seq.times, seq.K,
                                         False)
        truth = seq.joints_3d
        placed_np = placed.numpy().astype(float)
        ok = present & np.isfinite(placed_np).all(-1).all(-1)
        teacher_2d = np.linalg.norm(seq.keypoints - seq.joints_2d, axis=-1)[present].mean()
        teacher = summarise_3d(placed_np[ok], truth[ok])
        rows.append({"method": "teacher (2D detections; 3D placed by PnP)", "seed": seed,
                     "mpjpe_mm": teacher["mpjpe_mm"], "pa_mpjpe_mm": teacher["pa_mpjpe_mm"],
                     "acc_err": _acceleration_error(placed_np, truth, ok),
                     "epe_2d_px": teacher_2d, "seconds": 0.0})
        for name, change in ablations.items():
            weights = FitWeights(**{**defaults.__dict__, **change})
            started = time.perf_counter()
            result, _ = solve_track(hand, obs, placed, None, None, limit_frames, weights,
                                    fit.steps, fit.learning_rate)
            seconds = time.perf_counter() - started
            joints = result.joints.numpy().astype(float)
            scores = summarise_3d(joints[present], truth[present])
            rows.append({"method": name, "seed": seed, "mpjpe_mm": scores["mpjpe_mm"],
                         "pa_mpjpe_mm": scores["pa_mpjpe_mm"],
                         "acc_err": _acceleration_error(joints, truth, present),
                         "epe_2d_px": np.linalg.norm(result.projected.numpy() - seq.joints_2d,
                                                     axis=-1)[present].mean(),
                         "seconds": seconds})
            if name == "fit (default)":
                quality = track_quality(result, obs, config.quality_scale,
                                        config.quality_teacher_scale)
                per_frame = procrustes_errors(joints, truth).mean(-1)
                quality_pairs[0].extend(quality[present])
                quality_pairs[1].extend(per_frame[present])
        print(f"seed {seed} done", flush=True)
    table = pd.DataFrame(rows).groupby("method", sort=False).mean(numeric_only=True)
    print(f"{args.sequences} sequences (seeds {seeds[0]}-{seeds[-1]}) of "
          f"{args.frames} frames at 30 fps, 1280x720, the person's rest joints "
          f"{args.person_mm:g} mm from the model's, detections from the measured profile; "
          f"acc_err in mm/frame^2; seconds per sequence and variant (start and fit), torch's "
          f"{torch.get_num_threads()} threads")
    print(table.drop(columns="seed").to_markdown(floatfmt=".2f"))
    rho = confidence_error_correlation(np.array(quality_pairs[0]), np.array(quality_pairs[1]))
    print(f"quality score vs per-frame PA-MPJPE: Spearman {rho:.3f} over "
          f"{len(quality_pairs[0])} detected frames")


def run_teacher3d(args) -> None:
    """MediaPipe's world landmarks on the labelled samples with 3D: the main view alone
    against the TTA average the detect stage stores (PA-MPJPE), and the TTA 3D confidence's
    Spearman against the per-joint error."""
    from handlabel.models.detectors.mediapipe import MediaPipeHandDetector, MediaPipeOptions
    from handlabel.models.metrics.keypoints3d import procrustes_errors
    from handlabel.tasks.evaluate_keypoints import match

    samples = [s for s in read_labelled_manifest(LABELLED) if s.keypoints_3d is not None]
    tta, single = MediaPipeHandDetector(), MediaPipeHandDetector(MediaPipeOptions(tta=()))
    rows, pairs = [], ([], [])
    for sample in samples:
        rgb = sample.load_rgb()
        averaged, alone = match(tta.detect_image(rgb), sample), match(
            single.detect_image(rgb), sample)
        if averaged is None or alone is None:
            continue
        truth = sample.keypoints_3d[None]
        error = procrustes_errors(averaged.world[None], truth)[0]
        rows.append({"id": sample.id, "single view": procrustes_errors(
            alone.world[None], truth)[0].mean(), "TTA average": error.mean()})
        pairs[0].extend(averaged.world_confidence)
        pairs[1].extend(error)
    table = pd.DataFrame(rows)
    print(f"{LABELLED}: {len(table)} detected hands with 3D; PA-MPJPE mm")
    print(table.to_markdown(index=False, floatfmt=".2f"))
    print(table.mean(numeric_only=True).round(2).to_dict())
    rho = confidence_error_correlation(np.array(pairs[0]), np.array(pairs[1]))
    print(f"3D confidence vs per-joint PA error: Spearman {rho:.3f} over {len(pairs[0])} joints")


def run_teacher_loss(args) -> None:
    """The training loss on the teacher 3D, switched on at several weights: the demo preset
    trained on the videos of an existing store (``handlabel demo`` makes one), then the
    network alone and the labels (network + fit) on the labelled images (never trained on)."""
    from handlabel.config import LossWeights
    from handlabel.storage.store import DatasetStore
    from handlabel.tasks.evaluate_model import summarise_model
    from handlabel.tasks.train import train_store

    store = DatasetStore(args.store, create=False)
    videos = list(store.manifest.table()["video_id"])
    names = list(store.manifest.table()["name"])
    config = HandlabelConfig()
    rows = []
    for weight in args.weights:
        train = TrainConfig(losses=LossWeights(teacher_3d=weight))
        started = time.perf_counter()
        train_store(store, videos, train, overwrite=True)
        minutes = (time.perf_counter() - started) / 60
        table = evaluate_labelled(store, config)
        overall = summarise_model(table).set_index("source").loc["all"]
        rows.append({"teacher_3d weight": weight, "train minutes": minutes,
                     **{f"{m} {k}": overall[f"{m}_{k}"] for m in ("student", "fit")
                        for k in ("epe_px", "pck@0.2", "pa_mpjpe_mm")}})
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"), flush=True)
    print(f"trained ({train.preset} preset) on {', '.join(names)} of {args.store}; "
          f"evaluated on {LABELLED}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["synthetic", "real", "sequences", "teacher3d",
                                         "teacher-loss"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train", type=int, default=1024, help="training hands (at most)")
    parser.add_argument("--eval", type=int, default=256, help="synthetic evaluation hands")
    parser.add_argument("--size", type=int, default=128, help="network input size")
    parser.add_argument("--width", type=int, default=16, help="encoder width")
    parser.add_argument("--store", default="bench-accuracy-store")
    parser.add_argument("--only", help="synthetic: run only the variants whose name contains this")
    parser.add_argument("--sequences", type=int, default=8, help="sequences: how many")
    parser.add_argument("--frames", type=int, default=90, help="sequences: frames in each")
    parser.add_argument("--person-mm", type=float, default=0.0,
                        help="sequences: how far the person's rest joints sit from the model's")
    parser.add_argument("--first-seed", type=int, default=100,
                        help="sequences: the first seed (100.. held out; 200-202 the tuning "
                        "seeds the fit's weights were chosen on)")
    parser.add_argument("--fit-teacher-3d", type=float, nargs="+", default=[],
                        help="sequences: also fit at these teacher-3D weights")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1, 1.0],
                        help="teacher-loss: the teacher_3d weights to train with")
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    parts = {"synthetic": run_synthetic, "real": run_real, "sequences": run_sequences,
             "teacher3d": run_teacher3d, "teacher-loss": run_teacher_loss}
    parts[args.part](args)


if __name__ == "__main__":
    main()
