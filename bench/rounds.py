"""Rounds of fit and training (the ``rounds`` stage, ``tasks/rounds.py``) on the occlusion
benchmark's labelled clips: does the network, taught by the labels, give the fit evidence
where the detector fails, and does the stage's self-check see it?

    .venv/bin/python bench/rounds.py [--samples 53] [--frames 60] [--rounds 2]
                                     [--network-weight 1.0] [--min-gain 0.02] [--all]
                                     [--store DIR]

Each labelled image of ``../shared/data/labelled/`` becomes a 2 s clip with an object
passing over the hand (``bench/occlusion.py``, the same seed and occluders). Every stage runs
in one process (``bench/inprocess.py``) with the default config (the demo training preset),
the rounds through the stage's own units of work:

- **round 0**: the train and reconstruct stages' labels (the network only offers the fit a
  start);
- **round k** (1..``--rounds``): ``train.rounds``: the network retrained on the detections
  and on the kept labels (``train.LabelRound``: labels fitted to a detection, quality at
  least the export's low-quality threshold), then the fit again with its network term
  (``train.rounds.network_3d``, trusted as far as it agrees with the video's detections:
  ``models/fit/network_trust.py``).
  "kept" is the stage's decision (the self-check fell by ``--min-gain``); as the stage does,
  the rounds stop at the first not kept, unless ``--all`` (then every round's labels are
  taken on, kept or not, to measure rounds 1-3).

Per round and frame class (clean, occluded, heavy: at least 30% of the visible joints
covered), on the clips whose hand the detector finds on half their clean frames: the labels'
presence and 2D error (px, against the truth), PA-MPJPE on the 9 clips with 3D truth, the
network alone (its projected joints, on the frames it saw a crop) and the self-check over
the store (median px of the hidden detections, no truth). Training and evaluation data: the
network trains on the clips' own detected crops (and labels), as it does on a user's
archive; the truth is used only here, to score.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from inprocess import LOG, label_videos
from occlusion import Clip, findable, frame_rows, labelled_clips, load_occluders, match, pa_mm

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore
from handlabel.tasks.reconstruct import ROUND_0
from handlabel.tasks.rounds import (
    RoundCheck,
    accept_round,
    label_round,
    pooled_check,
    round_helped,
    round_source,
    start_rounds,
    train_round,
)


def network_rows(store: DatasetStore, video: str, clip: Clip, group: str) -> list[dict]:
    """Per frame: the network alone (its joints projected, from the network step in
    ``group``), found, 2D px and PA mm."""
    network = store.stage(video, group)
    present, points, joints = (network.read("present"), network.read("keypoints_2d"),
                               network.read("joints_3d"))
    rows = []
    for t in range(len(clip.truth)):
        visible = clip.visible[t]
        if not visible.any():
            continue
        row = {"clip": clip.name, "frame": t}
        slot = match(points[t], present[t], clip.truth[t], visible)
        row["network found"] = slot is not None
        if slot is not None:
            row["network px"] = float(np.linalg.norm(
                points[t, slot][visible] - clip.truth[t][visible], axis=1).mean())
            if clip.truth_3d is not None:
                row["network mm"] = pa_mm(joints[t, slot], clip.truth_3d)
        rows.append(row)
    return rows


def round_table(store: DatasetStore, clips: list[Clip], videos: list[str], name: str,
                check: RoundCheck, seconds: float, k: int = 0) -> pd.DataFrame:
    """One row per frame class of round ``k``'s labels and network."""
    source = round_source(k) if k else ROUND_0
    pairs = list(zip(clips, videos, strict=True))
    labels = pd.DataFrame([r for c, v in pairs for r in frame_rows(store, v, c, source.labels)])
    network = pd.DataFrame([r for c, v in pairs
                            for r in network_rows(store, v, c, source.network)])
    rows = findable(labels).merge(network, on=["clip", "frame"], how="left")
    out = []
    for frames, part in (("clean", rows[rows["class"] == "clean"]),
                         ("occluded", rows[rows["class"] != "clean"]),
                         ("heavy", rows[rows["class"] == "heavy"])):
        out.append({"round": name, "frames": frames, "n": len(part),
                    "labels present": part["labels found"].mean(),
                    "labels px": part["labels px"].mean(),
                    "labels PA mm": part.get("labels mm", pd.Series(dtype=float)).mean(),
                    "network found": part["network found"].mean(),
                    "network px": part["network px"].mean(),
                    "network PA mm": part.get("network mm", pd.Series(dtype=float)).mean(),
                    "self-check px": check.labels_px, "kept": check.kept,
                    "minutes": seconds / 60})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=53, help="labelled images used")
    parser.add_argument("--frames", type=int, default=60, help="frames per labelled clip")
    parser.add_argument("--rounds", type=int, default=2, help="rounds after round 0")
    parser.add_argument("--network-weight", type=float, default=1.0,
                        help="train.rounds.network_3d")
    parser.add_argument("--min-gain", type=float, default=0.02, help="train.rounds.min_gain")
    parser.add_argument("--all", action="store_true",
                        help="every round, taking on its labels whether kept or not")
    parser.add_argument("--store", help="store folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from handlabel.tasks.native_logs import quiet_native_logs

    quiet_native_logs()
    config = HandlabelConfig.model_validate({"train": {"rounds": {
        "count": args.rounds, "network_3d": args.network_weight, "min_gain": args.min_gain}}})
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = DatasetStore(args.store or str(folder / "store"))
        clips = labelled_clips(args.samples, args.frames, np.random.default_rng(args.seed),
                               load_occluders(), folder)
        started = time.perf_counter()
        videos = label_videos(store, [c.path for c in clips], config)
        best = pooled_check(0, [start_rounds(store, v, args.rounds) for v in videos])
        tables.append(round_table(store, clips, videos, "0", replace(best, kept=True),
                                  time.perf_counter() - started))
        for k in range(1, args.rounds + 1):
            started = time.perf_counter()
            train_round(store, videos, k, config, LOG)
            check = pooled_check(k, [label_round(store, v, k, config) for v in videos])
            kept = round_helped(best, check, args.min_gain)
            tables.append(round_table(store, clips, videos, str(k), replace(check, kept=kept),
                                      time.perf_counter() - started, k))
            print(pd.concat(tables).to_markdown(index=False, floatfmt=".3g"), flush=True)
            if not kept and not args.all:
                break
            for v in videos:
                accept_round(store, v, k)
            best = check
    print(f"\n{len(clips)} clips, labelled images; labels and network against the truth\n")
    print(pd.concat(tables).to_markdown(index=False, floatfmt=".3g"))
    print("\n.venv/bin/python bench/rounds.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        if v is not None and v is not False).replace(" True", ""))


if __name__ == "__main__":
    main()
