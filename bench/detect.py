"""Detection speed on CPU: the bare backend against the whole detect stage, same frames.

    .venv/bin/python bench/detect.py [--video PATH] [--frames N]

Rows: MediaPipe alone in video mode (no test-time augmentation), MediaPipe as configured
(with its TTA confidence), and the detect stage's unit of work (tasks.detect.detect_chunk:
frames read from the Zarr store, detection, slot tracking, 224 px crops with intrinsics,
arrays written), and OpenPifPaf's wholebody network when the extra is installed. The video is
ingested into a temporary store first (not timed).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import tempfile
import time
from pathlib import Path

from handlabel.config import DetectConfig, IngestConfig
from handlabel.models.detectors.mediapipe import MediaPipeHandDetector, MediaPipeOptions
from handlabel.storage.store import DatasetStore
from handlabel.tasks.detect import detect_chunk, detector_from_config, prepare_detect
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one

DEFAULT_VIDEO = (Path(__file__).resolve().parents[1].parent
                 / "shared/data/videos/right_hand_office.mp4")


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(DEFAULT_VIDEO))
    parser.add_argument("--frames", type=int, default=192, help="frames to time (whole chunks)")
    parser.add_argument("--pifpaf-frames", type=int, default=16,
                        help="frames OpenPifPaf is timed on (it is slow on CPU; 0: not timed)")
    args = parser.parse_args()
    config = DetectConfig()
    with tempfile.TemporaryDirectory() as folder:
        store = DatasetStore(folder)
        identity = identify(args.video)
        ingest_one(store, identity, IngestConfig(), False, logging.getLogger("bench"))
        video = store.video(identity.video_id)
        chunks = range(min(-(-args.frames // video.chunk_frames), video.n_chunks))
        n = min(len(chunks) * video.chunk_frames, video.n_frames)
        frames, times = video.read(0, n), video.timestamps()[:n]

        bare = MediaPipeHandDetector(MediaPipeOptions(tta=()))
        with_tta = detector_from_config(config)
        every_frame = detector_from_config(config.model_copy(update={"tta_every": 1}))
        rows = [
            ("MediaPipe video mode, no TTA (bare backend)",
             timed(lambda: list(bare.detect_video(frames, times)))),
            (f"MediaPipe + TTA confidence ({len(config.tta)} views, carried up to "
             f"{config.tta_every} frames)",
             timed(lambda: list(with_tta.detect_video(frames, times)))),
            (f"MediaPipe + TTA confidence ({len(config.tta)} views on every frame)",
             timed(lambda: list(every_frame.detect_video(frames, times)))),
        ]
        if importlib.util.find_spec("openpifpaf") is not None and args.pifpaf_frames:
            from handlabel.models.detectors.openpifpaf import (
                OpenPifPafHandDetector,
                OpenPifPafOptions,
            )

            pifpaf = OpenPifPafHandDetector(OpenPifPafOptions(random_init_base="shufflenetv2k16"))
            m = min(args.pifpaf_frames, n)
            seconds = timed(lambda: list(pifpaf.detect_video(frames[:m], times[:m])))
            rows.append((f"OpenPifPaf shufflenetv2k16 wholebody, random weights, first {m} "
                         "frames (see note)", seconds * n / m))
        stage_rows = [
            (f"detect stage unit, views carried up to {config.tta_every} frames (default)",
             config),
            ("detect stage unit, views on every frame (tta_every 1)",
             config.model_copy(update={"tta_every": 1})),
            ("detect stage unit, no views (confidence = hand score)",
             config.model_copy(update={"tta": []})),
        ]
        for name, settings in stage_rows:
            detector = detector_from_config(settings)
            prepare_detect(store, identity.video_id, settings, overwrite=True)
            rows.append((name, timed(lambda s=settings, d=detector: [
                detect_chunk(store, identity.video_id, c, s, d) for c in chunks])))
            detector.close()
        stage = rows[-3][1]
        height, width = frames.shape[1:3]

    base = rows[0][1]
    print(f"\nDetection on {Path(args.video).name}, {n} frames at {width}x{height}, "
          f"{os.cpu_count()} CPUs\n")
    print("| run | frames/s | time vs bare backend |")
    print("|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {n / seconds:.1f} | {seconds / base:.2f}x |")
    print("\nStage overhead over the same backend with TTA (default): "
          f"{stage / rows[1][1] - 1:+.0%}")
    print("Note: no OpenPifPaf checkpoint can be downloaded here; with random weights the "
          "network's time is real but the decoder finds no people, so decoding is faster "
          "than with a trained checkpoint.")
    print(f"Reproduce: .venv/bin/python bench/detect.py --frames {args.frames}")


if __name__ == "__main__":
    main()
