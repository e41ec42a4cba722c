"""The sequence fit's speed (reconstruct's per-video step: every track's fit and the
self-check) on stores that have their network step, and how far its labels are from a
reference store's.

    .venv/bin/python bench/fit.py STORE [STORE ...] [--threads 1 2] [--repeats 2]
        [--against DIR] [--keep DIR]

Each store is copied, and ``fit_reconstruct`` runs on the copy as the task does, timed per
video (median of the repeats) at each torch thread count. ``--keep DIR`` leaves the labels
of the last run in DIR/<store name>; ``--against DIR`` compares the labels with the ones a
``--keep`` run left there (for example before a change): the largest and median distance of
the labels' 2D keypoints (px) and 3D joints (mm) over the hands both have.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore
from handlabel.tasks.hand_fit import video_tracks
from handlabel.tasks.reconstruct import fit_reconstruct


def timed_fits(source: Path, threads: int, repeats: int, keep: Path | None) -> list[dict]:
    """Per video: its tracks' frames and the fit's median seconds over ``repeats`` runs."""
    config = HandlabelConfig().reconstruct
    torch.set_num_threads(threads)
    rows: dict[str, dict] = {}
    for _ in range(repeats):
        folder = Path(tempfile.mkdtemp(prefix="bench-fit-"))
        try:
            copy = folder / source.name
            shutil.copytree(source, copy)
            store = DatasetStore(str(copy))
            for video in store.manifest.table().itertuples():
                tracks = video_tracks(store, video.video_id, config.fit)
                started = time.perf_counter()
                fit_reconstruct(store, video.video_id, config)
                row = rows.setdefault(video.video_id, {
                    "store": source.name, "video": video.name, "threads": threads,
                    "tracks": len(tracks), "frames": sum(b - a for _, a, b in tracks),
                    "seconds": []})
                row["seconds"].append(time.perf_counter() - started)
            if keep is not None:
                shutil.rmtree(keep / source.name, ignore_errors=True)
                shutil.copytree(copy, keep / source.name)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    for row in rows.values():
        row["seconds"] = float(np.median(row.pop("seconds")))
        row["ms/frame"] = 1000 * row["seconds"] / max(row["frames"], 1)
    return list(rows.values())


def label_distance(store: Path, reference: Path) -> dict[str, tuple[float, float, float, float]]:
    """Per video: (max, median) 2D px and (max, median) 3D mm between two stores' labels."""
    out = {}
    ours, theirs = DatasetStore(str(store)), DatasetStore(str(reference))
    for video in ours.manifest.table()["video_id"]:
        a, b = ours.stage(video, "reconstruct"), theirs.stage(video, "reconstruct")
        both = a.read("present") & b.read("present")
        if not both.any():
            out[video] = (np.nan,) * 4
            continue
        px = np.linalg.norm(a.read("keypoints_2d") - b.read("keypoints_2d"), axis=-1)[both]
        mm = 1000 * np.linalg.norm(a.read("joints_3d") - b.read("joints_3d"), axis=-1)[both]
        out[video] = (float(px.max()), float(np.median(px)), float(mm.max()),
                      float(np.median(mm)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stores", type=Path, nargs="+")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--against", type=Path)
    args = parser.parse_args()
    rows = [row for store in args.stores for threads in args.threads
            for row in timed_fits(store, threads, args.repeats, args.keep)]
    print("reproduce: .venv/bin/python bench/fit.py "
          + " ".join(str(s) for s in args.stores)
          + f" --threads {' '.join(map(str, args.threads))} --repeats {args.repeats}")
    print("\n| store | video | tracks | frames | threads | seconds | ms/frame |")
    print("|:--|:--|--:|--:|--:|--:|--:|")
    for row in rows:
        print(f"| {row['store']} | {row['video']} | {row['tracks']} | {row['frames']} | "
              f"{row['threads']} | {row['seconds']:.1f} | {row['ms/frame']:.1f} |")
    if args.against and args.keep:
        print("\n| store | video | 2D px max / median | 3D mm max / median |")
        print("|:--|:--|--:|--:|")
        for store in args.stores:
            names = DatasetStore(str(store)).manifest.table().set_index("video_id")["name"]
            distances = label_distance(args.keep / store.name, args.against / store.name)
            for video, (px, px_median, mm, mm_median) in distances.items():
                print(f"| {store.name} | {names[video]} | {px:.3f} / {px_median:.3f} | "
                      f"{mm:.3f} / {mm_median:.3f} |")


if __name__ == "__main__":
    main()
