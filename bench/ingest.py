"""Ingest speed against bare decoding, and store size against raw frames.

    .venv/bin/python bench/ingest.py [--video PATH] [--repeats N]

Both are timed in the same run, interleaved, on the same file; the median of the repeats is
reported. "bare decode" is PyAV decoding to RGB arrays with the same threading and nothing
else; "ingest" is the whole unit of work of the ingest task (tasks.ingest.ingest_one:
decode, chunk, compress, write Zarr, completion records, manifest) into a fresh local store.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

from handlabel.config import CompressionConfig, IngestConfig
from handlabel.storage.store import DatasetStore
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one

DEFAULT_VIDEO = (
    Path(__file__).resolve().parents[1].parent / "shared/data/videos/right_hand_office.mp4"
)
# (codec, its level: zstd's level, h264's crf)
CODECS = [("h264", 18), ("h264", 23), ("zstd", 1), ("zstd", -3), ("blosc-lz4", 1), ("none", 0)]


def bare_decode(path: str) -> tuple[int, float]:
    start = time.perf_counter()
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = sum(
            1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24") is not None
        )
    return frames, time.perf_counter() - start


def folder_bytes(folder: str) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def ingest_once(path: str, codec: str, level: int) -> tuple[int, float, int]:
    identity = identify(path)
    setting = {"crf": level} if codec == "h264" else {"level": level}
    config = IngestConfig(compression=CompressionConfig(codec=codec, **setting))
    with tempfile.TemporaryDirectory() as folder:
        store = DatasetStore(folder)
        start = time.perf_counter()
        result = ingest_one(store, identity, config, False, logging.getLogger("bench"))
        seconds = time.perf_counter() - start
        frames_bytes = folder_bytes(os.path.join(folder, "videos", identity.video_id, "frames"))
    return result.n_frames, seconds, frames_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(DEFAULT_VIDEO))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    info = av.open(args.video).streams.video[0]
    width, height = info.width, info.height
    decode_fps, ingest = [], {c: [] for c in CODECS}
    stored = {}
    for _ in range(args.repeats):
        frames, seconds = bare_decode(args.video)
        decode_fps.append(frames / seconds)
        for codec in CODECS:
            frames, seconds, stored[codec] = ingest_once(args.video, *codec)
            ingest[codec].append(frames / seconds)
    bare = statistics.median(decode_fps)
    raw = frames * width * height * 3

    cpu = platform.processor() or platform.machine()
    print(
        f"\nIngest of {Path(args.video).name} ({frames} frames, {width}x{height}), "
        f"median of {args.repeats}; {os.cpu_count()} CPUs, {cpu}\n"
    )
    source = os.path.getsize(args.video)
    default = CompressionConfig()
    print("| run | frames/s | x bare decode | stored MB | x source file | raw MB | compression |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| bare PyAV decode to RGB | {bare:.0f} | 1.00 | - | - | {raw / 1e6:.0f} | - |")
    for (codec, level), values in ingest.items():
        fps = statistics.median(values)
        is_default = codec == default.codec and level == (
            default.crf if codec == "h264" else default.level)
        setting = f"crf {level}" if codec == "h264" else f"level {level}"
        size = stored[(codec, level)]
        print(
            f"| ingest, {codec} {setting}{' (default)' if is_default else ''} | {fps:.0f} | "
            f"{fps / bare:.2f} | {size / 1e6:.1f} | {size / source:.1f} | {raw / 1e6:.0f} | "
            f"{raw / size:.1f}x |"
        )
    print(
        f"\nReproduce: .venv/bin/python bench/ingest.py --repeats {args.repeats}"
        + ("" if args.video == str(DEFAULT_VIDEO) else f" --video {args.video}")
    )


if __name__ == "__main__":
    sys.exit(main())
