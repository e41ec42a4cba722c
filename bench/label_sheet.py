"""A contact sheet of a store's labels, for looking at them by eye: chosen frames of one
video with each label's skeleton drawn (blue: left slot, red: right slot, grey: flagged
low quality; thin: filled), its track and quality beside the wrist.

    .venv/bin/python bench/label_sheet.py STORE VIDEO_NAME 15,45,75 sheet.png
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from handlabel.config import ExportConfig
from handlabel.models.detectors.schema import BONES
from handlabel.storage.hand_table import video_hand_table
from handlabel.storage.store import DatasetStore

TILE = (640, 360)


def tile(store: DatasetStore, video_id: str, table, frame: int) -> np.ndarray:
    image = cv2.cvtColor(store.video(video_id).read(frame, frame + 1)[0], cv2.COLOR_RGB2BGR)
    for _, row in table[table["frame"] == frame].iterrows():
        points = np.asarray(row["keypoints_2d"]).reshape(21, 2).astype(int)
        colour = (160, 160, 160) if row["low_quality"] else \
            (255, 80, 0) if row["side"] == "left" else (0, 0, 255)
        for a, b in BONES:
            cv2.line(image, tuple(points[a]), tuple(points[b]), colour,
                     1 if row["interpolated"] else 3)
        cv2.putText(image, f"{row['side'][0]} t{row['track']} q{row['quality']:.2f}",
                    tuple(points[0] + [0, 30]), cv2.FONT_HERSHEY_SIMPLEX, 1.0, colour, 2)
    cv2.putText(image, f"frame {frame}", (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
    return cv2.resize(image, TILE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("video", help="the video's file name, as the manifest has it")
    parser.add_argument("frames", help="comma-separated frame indices")
    parser.add_argument("out", help="PNG to write")
    args = parser.parse_args()
    store = DatasetStore(args.store, create=False)
    matches = [v for v in store.videos_done("reconstruct", None)
               if store.manifest.get(v)["name"] == args.video]
    if not matches:
        raise SystemExit(f"{args.store}: no reconstructed video named {args.video}")
    export = ExportConfig()
    table = video_hand_table(store, matches[0], export.flag_below, export.min_track_s)
    tiles = [tile(store, matches[0], table, int(f)) for f in args.frames.split(",")]
    if len(tiles) % 2:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles), 2)]
    cv2.imwrite(args.out, np.vstack(rows))


if __name__ == "__main__":
    main()
