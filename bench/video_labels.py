"""Labels of the sample videos against the detections they learned from, with single-frame and
clip training (S2HAND(V)).

    .venv/bin/python bench/video_labels.py [--store bench-video-store] [--clip-lengths 1 4]

The sample videos go through ``handlabel run`` in one store with the default config; then, for
each further clip length T, the same store is run again with ``train.clip_length: T`` (a real
rerun: ingest, detect and weight are reused; train and reconstruct redo). Per video and T:

- 2D acceleration (px/frame^2): the mean over joints of |k(t+1) - 2 k(t) + k(t-1)|, on the
  triplets of consecutive frames where the detector found the hand in all three (so the labels'
  filled frames count nowhere), for the detections, the network alone and the labels;
- agreement: the labels' (and the network's) mean joint distance to the detections, px, on
  every detected hand; the sample videos have no 2D truth, so this is how far the labels move
  from their teacher, not an error;
- slot swaps in the detections (as ``bench/tracks.py`` counts them); the labels keep the
  detect stage's slots, so they have the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tracks import track_stats

from handlabel.config import HandlabelConfig, TrainConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VIDEOS = [DATA / "videos" / "right_hand_office.mp4", DATA / "videos" / "gesture_mjpg_320x240.avi"]


def acceleration_px(keypoints: np.ndarray, triplets: np.ndarray) -> float:
    """Mean 2D acceleration over joints and the given middles t of (t-1, t, t+1);
    keypoints (T, 21, 2)."""
    t = triplets
    step = keypoints[t + 1] - 2 * keypoints[t] + keypoints[t - 1]
    return float(np.linalg.norm(step, axis=-1).mean()) if len(t) else float("nan")


def video_rows(store, video_id: str, name: str, clip_length: int) -> dict:
    detect, network = store.stage(video_id, "detect"), store.stage(video_id, "network")
    labels = store.stage(video_id, "reconstruct")
    present = detect.read("present")
    detections = detect.read("keypoints")[..., :2]
    predicted = {"network": network.read("keypoints_2d"), "labels": labels.read("keypoints_2d")}
    row = {"video": name, "clip length T": clip_length}
    acc = {k: [] for k in ("detections", "network", "labels")}
    agree = {k: [] for k in predicted}
    for slot in range(present.shape[1]):
        here = present[:, slot]
        middles = np.flatnonzero(here[1:-1] & here[:-2] & here[2:]) + 1
        acc["detections"].append((acceleration_px(detections[:, slot], middles), len(middles)))
        for key, points in predicted.items():
            acc[key].append((acceleration_px(points[:, slot], middles), len(middles)))
            distance = np.linalg.norm(points[here, slot] - detections[here, slot], axis=-1)
            agree[key].extend(distance.mean(-1))
    triplets = sum(n for _, n in acc["detections"])
    for key, parts in acc.items():
        row[f"{key} acc px/f^2"] = sum(a * n for a, n in parts if n) / max(triplets, 1)
    for key, distances in agree.items():
        row[f"{key} vs detections px"] = float(np.mean(distances))
    row["triplets"] = triplets
    row["slot swaps"] = track_stats(store, video_id, store.video(video_id).chunk_frames)[
        "slot swaps"]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default="bench-video-store")
    parser.add_argument("--clip-lengths", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--videos", type=Path, nargs="+", default=VIDEOS)
    args = parser.parse_args(argv)
    from handlabel.flows.pipeline import run_pipeline
    from handlabel.storage.store import DatasetStore

    rows = []
    for clip_length in args.clip_lengths:
        config = HandlabelConfig(train=TrainConfig(clip_length=clip_length))
        state = run_pipeline([str(v) for v in args.videos], args.store, config)
        if not state.is_completed():
            sys.exit(f"pipeline at T={clip_length}: {state.type.value} {state.message}")
        store = DatasetStore(args.store, create=False)
        for _, entry in store.manifest.table().iterrows():
            rows.append(video_rows(store, entry["video_id"], entry["name"], clip_length))
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"), flush=True)
    print(f"$ .venv/bin/python bench/video_labels.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
