"""Carried view agreement on video: detection speed and how well the confidence ranks the
errors, for each view schedule (``detect.tta_every``, ``detect.tta_jump``).

    .venv/bin/python bench/view_schedule.py --store S [--schedules 1:0.3 4:0.15 8:0.3 16:0.3]

S is a store of the calibrated stereo pair with its rig labelled
(``handlabel run ../shared/data/stereo --store S --config configs/stereo-rig.yaml``). The
error of a detected joint is its distance, in hand sizes, from the rig's label projected into
that camera (fitted over both cameras: the only per-joint reference on video here; it was
fitted with every-frame confidences, so it leans towards them). Each camera's video is
detected again with each schedule (frames decoded beforehand, not timed); the rank
correlation pools both cameras' joints over the rig frames with a label.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from handlabel.models.detectors.mediapipe import MediaPipeHandDetector, MediaPipeOptions
from handlabel.models.metrics.keypoints2d import confidence_error_correlation
from handlabel.storage.video import iter_frames

STEREO = Path(__file__).resolve().parents[1].parent / "shared/data/stereo"
SAME_HAND = 0.5  # a detection further than this (mean, hand sizes) from the label is another


def detect(frames, times, options: MediaPipeOptions) -> tuple[list, float]:
    detector = MediaPipeHandDetector(options)
    try:
        started = time.perf_counter()
        found = list(detector.detect_video(frames, times))
        return found, time.perf_counter() - started
    finally:
        detector.close()


def joint_rows(found: list, labels: pd.DataFrame, camera: str) -> list[dict]:
    rows = []
    for frame, label in labels.groupby(f"frame_{camera}"):
        hands = found[int(frame)] if int(frame) < len(found) else []
        for target in label[f"keypoints_2d_{camera}"]:
            target = np.asarray(target).reshape(21, 2)
            if not hands:
                continue
            hand = min(hands, key=lambda h: np.linalg.norm(h.keypoints - target, axis=1).mean())
            error = np.linalg.norm(hand.keypoints - target, axis=1) / hand.size
            if error.mean() <= SAME_HAND:
                rows += [{"error": e, "confidence": c}
                         for e, c in zip(error, hand.confidence, strict=True)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--rig", default="desk")
    parser.add_argument("--cameras", nargs="+", default=["cam0", "cam1"])
    parser.add_argument("--schedules", nargs="+", default=["1:0.3", "4:0.15", "8:0.3", "16:0.3"])
    args = parser.parse_args()
    labels = pd.read_parquet(Path(args.store, "export", "rigs", args.rig, "hands.parquet"))
    labels = labels[~labels["interpolated"] & (labels["quality"] > 0)]
    videos = {c: list(iter_frames(str(STEREO / f"{c}.mp4"))) for c in args.cameras}
    results = []
    bare = sum(detect([f for f, _ in v], [t for _, t in v], MediaPipeOptions(tta=()))[1]
               for v in videos.values())
    frames = sum(len(v) for v in videos.values())
    for schedule in args.schedules:
        every, jump = schedule.split(":")
        options = MediaPipeOptions(tta_every=int(every), tta_jump=float(jump))
        rows, seconds, fresh, hands = [], 0.0, 0, 0
        for camera, video in videos.items():
            found, spent = detect([f for f, _ in video], [t for _, t in video], options)
            seconds += spent
            fresh += sum(h.extras["tta_fresh"] for frame in found for h in frame)
            hands += sum(len(frame) for frame in found)
            rows += joint_rows(found, labels, camera)
        table = pd.DataFrame(rows)
        results.append({
            "tta_every:tta_jump": schedule, "frames/s": frames / seconds,
            "x bare detector": bare / seconds, "hands with fresh views": fresh / hands,
            "Spearman (confidence, error)": confidence_error_correlation(
                table["confidence"].to_numpy(float), table["error"].to_numpy(float)),
            "joints": len(table)})
    print(f"\nView schedules on {', '.join(args.cameras)} ({frames} frames); bare detector "
          f"{frames / bare:.1f} frames/s\n")
    print(pd.DataFrame(results).to_markdown(index=False, floatfmt=".3f"))
    print(f"\nReproduce: .venv/bin/python bench/view_schedule.py --store {args.store} "
          f"--schedules {' '.join(args.schedules)}")


if __name__ == "__main__":
    main()
