"""Detection speed on CPU: the bare backend against the whole detect stage, same frames.

    .venv/bin/python bench/detect.py [--video PATH] [--frames N] [--repeats R]

Rows: MediaPipe alone in video mode (no test-time augmentation), MediaPipe as configured
(with its TTA confidence), and the detect task's unit of work
(``tasks.detect.detect_run`` of one chunk: a detector built and closed per chunk,
frames read from the Zarr store with each chunk's warm-up frames, detection, slot tracking,
224 px crops with intrinsics, arrays written), and OpenPifPaf's wholebody network when the
extra is installed. The video is ingested into a temporary store first (not timed).

Every row is run once untimed (warm-up: model files, caches, allocators), then ``--repeats``
rounds in which the rows take turns (interleaved, so a change in the machine's load falls
on every row alike); each row's figure is its median round.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from handlabel.config import DetectConfig, IngestConfig
from handlabel.models.detectors.mediapipe import MediaPipeHandDetector, MediaPipeOptions
from handlabel.storage.store import DatasetStore
from handlabel.tasks.detect import detect_run, detector_from_config, prepare_detect
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one

DEFAULT_VIDEO = (Path(__file__).resolve().parents[1].parent
                 / "shared/data/videos/right_hand_office.mp4")


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def interleaved(rows: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Each row's median time over ``repeats`` rounds, after one untimed warm-up round."""
    for run in rows.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, run in rows.items():
            times[name].append(timed(run))
    return {name: statistics.median(values) for name, values in times.items()}


def backend_rows(frames, times, config: DetectConfig) -> dict[str, Callable[[], object]]:
    bare = MediaPipeHandDetector(MediaPipeOptions(tta=()))
    with_tta = detector_from_config(config)
    every_frame = detector_from_config(config.model_copy(update={"tta_every": 1}))
    return {
        "MediaPipe video mode, no TTA (bare backend)":
            lambda: list(bare.detect_video(frames, times)),
        f"MediaPipe + TTA confidence ({len(config.tta)} views, carried up to "
        f"{config.tta_every} frames)": lambda: list(with_tta.detect_video(frames, times)),
        f"MediaPipe + TTA confidence ({len(config.tta)} views on every frame)":
            lambda: list(every_frame.detect_video(frames, times)),
    }


def stage_rows(store: DatasetStore, video_id: str, chunks: range, config: DetectConfig
               ) -> dict[str, Callable[[], object]]:
    variants = {
        f"detect task unit, views carried up to {config.tta_every} frames (default)": config,
        "detect task unit, views on every frame (tta_every 1)":
            config.model_copy(update={"tta_every": 1}),
        "detect task unit, no views (confidence = hand score)":
            config.model_copy(update={"tta": []}),
    }

    def unit(settings: DetectConfig) -> Callable[[], object]:
        def run() -> None:
            prepare_detect(store, video_id, settings, overwrite=True)
            for chunk in chunks:
                detect_run(store, video_id, [chunk], settings)
        return run

    return {name: unit(settings) for name, settings in variants.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(DEFAULT_VIDEO))
    parser.add_argument("--frames", type=int, default=192, help="frames to time (whole chunks)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per row")
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
        rows = backend_rows(frames, times, config) | stage_rows(store, identity.video_id,
                                                                chunks, config)
        seconds = interleaved(rows, args.repeats)
        if importlib.util.find_spec("openpifpaf") is not None and args.pifpaf_frames:
            from handlabel.models.detectors.openpifpaf import (
                OpenPifPafHandDetector,
                OpenPifPafOptions,
            )

            pifpaf = OpenPifPafHandDetector(OpenPifPafOptions(random_init_base="shufflenetv2k16"))
            m = min(args.pifpaf_frames, n)
            name = f"OpenPifPaf shufflenetv2k16 wholebody, random weights, first {m} frames"
            seconds[name] = interleaved(
                {name: lambda: list(pifpaf.detect_video(frames[:m], times[:m]))}, 1)[name] * n / m
        height, width = frames.shape[1:3]

    names = list(seconds)
    base = seconds[names[0]]
    print(f"\nDetection on {Path(args.video).name}, {n} frames at {width}x{height}, "
          f"{os.cpu_count()} CPUs; median of {args.repeats} interleaved rounds after a "
          "warm-up\n")
    print("| run | frames/s | time vs bare backend |")
    print("|---|---:|---:|")
    for name in names:
        print(f"| {name} | {n / seconds[name]:.1f} | {seconds[name] / base:.2f}x |")
    print("\nTask unit overhead over the same backend with TTA (default): "
          f"{seconds[names[3]] / seconds[names[1]] - 1:+.0%}")
    print("Note: no OpenPifPaf checkpoint can be downloaded here; with random weights the "
          "network's time is real but the decoder finds no people, so decoding is faster "
          "than with a trained checkpoint.")
    print(f"Reproduce: .venv/bin/python bench/detect.py --frames {args.frames} "
          f"--repeats {args.repeats} --pifpaf-frames {args.pifpaf_frames}")


if __name__ == "__main__":
    main()
