"""Ghost hands on the sample videos: a second detection of one hand, dropped, and the hand it
hid found again.

    .venv/bin/python bench/ghosts.py [VIDEO ...]

Runs the MediaPipe detector (video mode, no test-time views: the ghosts come from the
tracker) on each video as MediaPipe gives its hands and with ghosts dropped. Per video: frames,
frames with 0, 1 and 2 hands, two detections on one hand (models/detectors/duplicates.py's
test, counted on MediaPipe's own output), ghosts dropped and hands found again by palm
detection on those frames, and seconds. What the videos show is in docs/accuracy.md
(looked at by eye).
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations
from pathlib import Path

import numpy as np

from handlabel.models.detectors.duplicates import same_hand
from handlabel.models.detectors.mediapipe import MediaPipeHandDetector, MediaPipeOptions
from handlabel.storage.video import iter_frames
from handlabel.tasks.native_logs import quiet_native_logs

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
DEFAULT = ["right_hand_office.mp4", "gesture_mjpg_320x240.avi", "two_hands_cups.mp4",
           "two_hands_coffee.mp4"]


def run(frames, times, drop: bool) -> dict:
    detector = MediaPipeHandDetector(MediaPipeOptions(tta=(), drop_ghosts=drop))
    started = time.perf_counter()
    per_frame = list(detector.detect_video(frames, times))
    seconds = time.perf_counter() - started
    counts = np.array([len(hands) for hands in per_frame])
    pairs = sum(any(same_hand(a.keypoints, b.keypoints) for a, b in combinations(hands, 2))
                for hands in per_frame)
    detector.close()
    return {"0 hands": int((counts == 0).sum()), "1 hand": int((counts == 1).sum()),
            "2 hands": int((counts == 2).sum()), "frames with a ghost pair": pairs,
            "ghosts dropped": detector.ghosts_dropped,
            "hands found again": detector.hands_recovered, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    quiet_native_logs()
    print("\n| video | frames | run | 0 hands | 1 hand | 2 hands | frames with a ghost pair "
          "| ghosts dropped | hands found again | seconds |")
    print("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    for name in args.videos:
        frames, times = zip(*iter_frames(str(VIDEOS / name), 1280), strict=True)
        for drop in (False, True):
            row = run(list(frames), list(times), drop)
            label = "ghosts dropped" if drop else "MediaPipe as is"
            print(f"| {name} | {len(frames)} | {label} | " + " | ".join(
                f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()) + " |",
                flush=True)
    print(f"\nReproduce: .venv/bin/python bench/ghosts.py {' '.join(args.videos)}")


if __name__ == "__main__":
    main()
