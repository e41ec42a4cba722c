"""Hand tracks across chunk borders: the detect stage with and without its warm-up frames;
with ``--labels``, the labels' tracks on two-hand and hand-object clips.

    .venv/bin/python bench/tracks.py [--chunk-frames 64] [--warmup 0 8] [--videos ...]
    .venv/bin/python bench/tracks.py --labels [--videos ...] [--store DIR] [--no-identity]
                                     [--search 0 15]

``--labels`` runs the stages up to reconstruct in one process (``bench/inprocess.py``, the
default config with and without the search for lost hands; training cut to one epoch over
64 hands: the labels do not depend on the network, issue 26) on the cups, coffee and
gesture clips, and reports per clip: hand-frames detected (and found by the search), label
rows (and filled ones), frames with two labels, tracks, short tracks (flagged as likely
ghosts: ``export.min_track_s``), the share flagged low quality, slot swaps in the labels
(counted as below) and the hand-frames the whole-video identity step moved to their side
(``models/identity.py``; ``--no-identity`` runs without it, ``detect.identity: false``).
Hands in view are not known here: docs/accuracy.md counts them by eye on sampled frames.

Each sample video is ingested once into a temporary store, then detected chunk by chunk (the
real ``detect_chunk``, chunks independent as on Dask) for each warm-up length. Per setting:
- slot swaps: a hand whose box moves to the other slot from one frame to the next;
- drops at borders: a hand present in a chunk's last frame and missing in the next chunk's
  first frame, against the same rate between frames inside chunks;
- the 2D jump (px, median over joints and hands) from a chunk's last frame to the next
  chunk's first, against the same inside chunks: trackers that restart at a border make
  the border frames jump more;
- detect time per frame.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VIDEOS = [DATA / "videos" / "right_hand_office.mp4", DATA / "stereo" / "cam0.mp4",
          DATA / "stereo" / "cam1.mp4"]
HARD = [DATA / "videos" / "two_hands_cups.mp4", DATA / "videos" / "two_hands_coffee.mp4",
        DATA / "videos" / "gesture_mjpg_320x240.avi"]


def ingest(store, video: Path, chunk_frames: int) -> str:
    from handlabel.config import IngestConfig
    from handlabel.tasks.identify import identify
    from handlabel.tasks.ingest import ingest_one

    identity = identify(str(video), store.url)
    result = ingest_one(store, identity, IngestConfig(chunk_frames=chunk_frames), False,
                        logging.getLogger("bench"))
    assert result.outcome != "failed", result.error
    return identity.video_id


def detect(store, video_id: str, warmup: int) -> float:
    from handlabel.config import DetectConfig
    from handlabel.tasks.detect import detect_chunk, detector_from_config, prepare_detect

    config = DetectConfig(warmup_frames=warmup)
    todo = prepare_detect(store, video_id, config, overwrite=True)
    detector = detector_from_config(config)
    started = time.perf_counter()
    try:
        for chunk in todo:
            detect_chunk(store, video_id, chunk, config, detector)
    finally:
        detector.close()
    return (time.perf_counter() - started) / store.video(video_id).n_frames


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., 2:], b[..., 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area = lambda x: (x[..., 2:] - x[..., :2]).prod(-1)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def slot_swaps(present: np.ndarray, box: np.ndarray) -> int:
    """Hands whose box moves to the other slot from one frame to the next: present (T, 2),
    box (T, 2, 4)."""
    swaps = 0
    for slot in (0, 1):
        here, there = present[:-1, slot], present[1:, slot]
        other = present[1:, 1 - slot]
        moved = here & other & (_iou(box[:-1, slot], box[1:, 1 - slot]) > 0.5) & \
            (~there | (_iou(box[:-1, slot], box[1:, slot]) < 0.5))
        swaps += int(moved.sum())
    return swaps


def label_stats(store, video_id: str, config) -> dict:
    """The labels' tracks of one video (see the module doc)."""
    from handlabel.storage.hand_table import video_hand_table

    table = video_hand_table(store, video_id, config.export.flag_below,
                             config.export.min_track_s)
    detect, labels = store.stage(video_id, "detect"), store.stage(video_id, "reconstruct")
    points = labels.read("keypoints_2d")
    box = np.concatenate([np.nanmin(points, 2), np.nanmax(points, 2)], axis=-1)
    present = labels.read("present")
    short = table[table["short_track"]]
    return {"frames": len(present), "detected hand-frames": int(detect.read("present").sum()),
            "found by search": int(detect.read("searched").sum()),
            "label rows": len(table), "filled": int(table["interpolated"].sum()),
            "frames with 2 labels": int(present.all(1).sum()),
            "tracks": table["track"].nunique(), "short tracks": short["track"].nunique(),
            "their rows": len(short), "low_quality share": float(table["low_quality"].mean()),
            "label slot swaps": slot_swaps(present, box),
            "sides moved": int(detect.attrs.get("moved_sides", 0))}


def labels_main(videos: list[Path], store_folder: str | None, identity: bool = True,
                searches: tuple[int, ...] = (0, 15)) -> None:
    import warnings

    from inprocess import label_videos

    from handlabel.config import HandlabelConfig, TrainConfig
    from handlabel.storage.store import DatasetStore
    from handlabel.tasks.native_logs import quiet_native_logs

    quiet_native_logs()
    warnings.filterwarnings("ignore", "All-NaN slice")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = DatasetStore(store_folder or f"{folder}/store")
        for search in searches:
            config = HandlabelConfig(train=TrainConfig(epochs=1, max_samples=64),
                                     detect={"search_frames": search, "identity": identity})
            for video, video_id in zip(videos, label_videos(store, videos, config),
                                       strict=True):
                rows.append({"video": video.name, "search_frames": search,
                             **label_stats(store, video_id, config)})
    print(f"$ .venv/bin/python bench/tracks.py {' '.join(sys.argv[1:])}".rstrip())
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))


def track_stats(store, video_id: str, chunk_frames: int) -> dict:
    arrays = store.stage(video_id, "detect")
    present, box = arrays.read("present"), arrays.read("box")
    keypoints = arrays.read("keypoints")[..., :2]
    n = len(present)
    border = np.zeros(n - 1, bool)
    border[chunk_frames - 1::chunk_frames] = True  # pair (t, t+1) crosses a border
    swaps, jumps, drops = slot_swaps(present, box), {True: [], False: []}, \
        {True: [0, 0], False: [0, 0]}
    for slot in (0, 1):
        here, there = present[:-1, slot], present[1:, slot]
        kept = here & there
        step = np.linalg.norm(keypoints[1:, slot] - keypoints[:-1, slot], axis=-1)
        for at_border in (True, False):
            where = kept & (border == at_border)
            jumps[at_border] += list(np.median(step[where], axis=-1))
            drops[at_border][0] += int((here & ~there & (border == at_border)).sum())
            drops[at_border][1] += int((here & (border == at_border)).sum())
    rate = {k: v[0] / max(v[1], 1) for k, v in drops.items()}
    return {"frames": n, "hand frames": int(present.any(1).sum()), "slot swaps": swaps,
            "drop rate at borders": rate[True], "drop rate inside": rate[False],
            "jump px at borders": float(np.median(jumps[True])) if jumps[True] else np.nan,
            "jump px inside": float(np.median(jumps[False])) if jumps[False] else np.nan}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunk-frames", type=int, default=64)
    parser.add_argument("--warmup", type=int, nargs="+", default=[0, 8])
    parser.add_argument("--videos", type=Path, nargs="+")
    parser.add_argument("--labels", action="store_true", help="the labels' tracks instead")
    parser.add_argument("--store", help="--labels: keep the store here (default: temporary)")
    parser.add_argument("--no-identity", action="store_true",
                        help="--labels: without the whole-video identity step")
    parser.add_argument("--search", type=int, nargs="+", default=[0, 15],
                        help="--labels: the detect.search_frames values run (15: default)")
    args = parser.parse_args(argv)
    if args.labels:
        return labels_main(args.videos or HARD, args.store, not args.no_identity,
                           tuple(args.search))
    args.videos = args.videos or VIDEOS
    from handlabel.storage.store import DatasetStore

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = DatasetStore(f"{folder}/store")
        for video in args.videos:
            video_id = ingest(store, video, args.chunk_frames)
            for warmup in args.warmup:
                seconds = detect(store, video_id, warmup)
                rows.append({"video": video.name, "warm-up frames": warmup,
                             **track_stats(store, video_id, args.chunk_frames),
                             "detect ms/frame": 1000 * seconds})
    table = pd.DataFrame(rows)
    print(f"$ .venv/bin/python bench/tracks.py {' '.join(sys.argv[1:])}".rstrip())
    print(table.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
