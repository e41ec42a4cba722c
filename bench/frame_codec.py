"""What a lossy frame codec costs the detect stage, against lossless frames.

    .venv/bin/python bench/frame_codec.py [--crf 18 23] [--videos ...]

- Labelled images (``../shared/data/labelled``, 2D truth): each image goes through the codec
  as a one-frame chunk and the default detector (with its TTA views) runs on it; 2D EPE and
  PCK@0.2 of the coded images against the original ones, on the hands detected in all runs,
  and the median per-hand change (one hand on which MediaPipe flips between a good and a bad
  answer moves the mean by px, either way).
- Sample videos (no truth): each is ingested losslessly (zstd) and with the codec, into two
  stores, and the detect stage runs chunk by chunk on each; the mean distance between the two
  runs' keypoints, over hand-frames found in both, bounds how much the codec can move the
  detections' error (|EPE_codec - EPE_lossless| <= that distance); hands found in one run
  only are counted. Store bytes against the source file's.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from tracks import detect

from handlabel.config import CompressionConfig, DetectConfig, IngestConfig
from handlabel.models.metrics.keypoints2d import pck
from handlabel.storage.labelled import read_labelled_manifest
from handlabel.storage.store import DatasetStore
from handlabel.storage.video_codec import H264FrameCodec, decode_frames, encode_frames
from handlabel.tasks.detect import detector_from_config
from handlabel.tasks.evaluate_keypoints import evaluate_keypoints
from handlabel.tasks.identify import identify
from handlabel.tasks.ingest import ingest_one

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABELLED = DATA / "labelled" / "manifest.json"
VIDEOS = [DATA / "videos" / "right_hand_office.mp4", DATA / "videos" / "gesture_mjpg_320x240.avi",
          DATA / "stereo" / "cam0.mp4"]


class CodedImages:
    """A detector that sees each image after a round trip through the frame codec."""

    def __init__(self, detector, codec: H264FrameCodec):
        self.detector, self.codec = detector, codec

    def detect_image(self, rgb: np.ndarray):
        coded = decode_frames(encode_frames(rgb[None], self.codec), (1, *rgb.shape))[0]
        return self.detector.detect_image(coded)


def labelled_rows(crfs: list[int]) -> list[dict]:
    samples = read_labelled_manifest(LABELLED)
    detector = detector_from_config(DetectConfig())
    rows = []
    try:
        runs = {"lossless": detector, **{f"h264 crf {c}": CodedImages(detector, H264FrameCodec(
            crf=c)) for c in crfs}}
        tables = {name: evaluate_keypoints(samples, d)[1] for name, d in runs.items()}
    finally:
        detector.close()
    both = set.intersection(*(set(t.loc[t["detected"], "id"]) for t in tables.values()))
    per_hand = {name: t[t["id"].isin(both)].groupby("id")["error_px"].mean()
                for name, t in tables.items()}
    for name, joints in tables.items():
        kept = joints[joints["id"].isin(both)]
        change = per_hand[name] - per_hand["lossless"]
        found = set(joints.loc[joints["detected"], "id"])
        lossless_found = set(tables["lossless"].loc[tables["lossless"]["detected"], "id"])
        rows.append({"frames": name, "hands in all": len(both),
                     "EPE px": kept["error_px"].mean(),
                     "PCK@0.2": pck(kept["error_norm"].to_numpy()),
                     "per-hand EPE change px (median)": change.median(),
                     "hands changed > 1 px": int((change.abs() > 1).sum()),
                     "found here only / lossless only": f"{len(found - lossless_found)} / "
                                                       f"{len(lossless_found - found)}"})
    return rows


def ingest(folder: str, video: Path, codec: str, crf: int) -> tuple[DatasetStore, str, int]:
    store = DatasetStore(f"{folder}/{codec}-{crf}")
    identity = identify(str(video), store.url)
    config = IngestConfig(compression=CompressionConfig(codec=codec, crf=crf))
    result = ingest_one(store, identity, config, False, logging.getLogger("bench"))
    assert result.outcome != "failed", result.error
    frames = Path(store.url) / "videos" / identity.video_id / "frames"
    return store, identity.video_id, sum(p.stat().st_size for p in frames.rglob("*") if p.is_file())


def video_rows(video: Path, crfs: list[int]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        base, vid, base_bytes = ingest(folder, video, "zstd", 0)
        detect(base, vid, DetectConfig().warmup_frames)
        reference = base.stage(vid, "detect")
        present, keypoints = reference.read("present"), reference.read("keypoints")[..., :2]
        rows.append({"video": video.name, "frames": "lossless (zstd -3)",
                     "x source bytes": base_bytes / video.stat().st_size})
        for crf in crfs:
            store, _, size = ingest(folder, video, "h264", crf)
            detect(store, vid, DetectConfig().warmup_frames)
            coded = store.stage(vid, "detect")
            there, points = coded.read("present"), coded.read("keypoints")[..., :2]
            both = present & there
            moved = np.linalg.norm(points[both] - keypoints[both], axis=-1)
            rows.append({"video": video.name, "frames": f"h264 crf {crf}",
                         "x source bytes": size / video.stat().st_size,
                         "hand-frames in both": int(both.sum()),
                         "in one only": int((present ^ there).sum()),
                         "keypoint shift px (mean)": float(moved.mean()),
                         "shift px (median)": float(np.median(moved))})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crf", type=int, nargs="+", default=[18, 23])
    parser.add_argument("--videos", type=Path, nargs="*", default=VIDEOS)
    args = parser.parse_args(argv)
    print(pd.DataFrame(labelled_rows(args.crf)).to_markdown(index=False, floatfmt=".3f"),
          flush=True)
    rows = [row for video in args.videos for row in video_rows(video, args.crf)]
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
    print(f"$ .venv/bin/python bench/frame_codec.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
