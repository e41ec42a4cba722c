"""Rounds of fit and training (issue 26) on the occlusion benchmark's labelled clips: does
the network, taught by the labels, give the fit evidence where the detector fails?

    .venv/bin/python bench/rounds.py [--samples 53] [--frames 60] [--rounds 2]
                                     [--network-weight 1.0] [--store DIR]

Each labelled image of ``../shared/data/labelled/`` becomes a 2 s clip with an object
passing over the hand (``bench/occlusion.py``, the same seed and occluders). Every stage runs
in one process (``bench/inprocess.py``) with the default config (the demo training preset):

- **round 0**: today's labels (the network only offers the fit a start);
- **round 0 + network term**: the same network as evidence in the fit
  (``reconstruct.fit.weights.network_3d``, trusted as far as it agrees with the video's
  detections: ``models/fit/network_trust.py``);
- **round k** (1..``--rounds``): the network retrained on the detections and on round k-1's
  labels (``tasks/train.py`` ``LabelRound``: labels fitted to a detection, quality at least
  the export's low-quality threshold), then the fit again with its network term.

Per round and frame class (clean, occluded, heavy: at least 30% of the visible joints
covered), on the clips whose hand the detector finds on half their clean frames: the labels'
presence and 2D error (px, against the truth), PA-MPJPE on the 9 clips with 3D truth, the
network alone (its projected joints, on the frames it saw a crop) and the self-check's median
(hidden detections, no truth). Training and evaluation data: the network trains on the clips'
own detected crops (and labels), as it does on a user's archive; the truth is used only
here, to score.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from inprocess import LOG, label_videos, reconstruct_videos
from occlusion import Clip, findable, frame_rows, labelled_clips, load_occluders, match, pa_mm

from handlabel.config import HandlabelConfig
from handlabel.storage.store import DatasetStore
from handlabel.tasks.train import LabelRound, train_store

LABEL_WEIGHTS = LabelRound()


def network_rows(store: DatasetStore, video: str, clip: Clip) -> list[dict]:
    """Per frame: the network alone (its joints projected), found, 2D px and PA mm."""
    network = store.stage(video, "network")
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
                seconds: float) -> pd.DataFrame:
    """One row per frame class of the round's labels and network."""
    labels = pd.DataFrame([r for c, v in zip(clips, videos, strict=True)
                           for r in frame_rows(store, v, c)])
    network = pd.DataFrame([r for c, v in zip(clips, videos, strict=True)
                            for r in network_rows(store, v, c)])
    rows = findable(labels).merge(network, on=["clip", "frame"], how="left")
    check = store.manifest.table().set_index("video_id").loc[videos]
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
                    "self-check px": float(np.nanmedian(
                        check["reconstruct_selfcheck_px"].astype(float))),
                    "minutes": seconds / 60})
    return pd.DataFrame(out)


def with_network_term(config: HandlabelConfig, weight: float) -> HandlabelConfig:
    data = config.model_dump()
    data["reconstruct"]["fit"]["weights"]["network_3d"] = weight
    return HandlabelConfig.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=53, help="labelled images used")
    parser.add_argument("--frames", type=int, default=60, help="frames per labelled clip")
    parser.add_argument("--rounds", type=int, default=2, help="rounds after round 0")
    parser.add_argument("--network-weight", type=float, default=1.0,
                        help="reconstruct.fit.weights.network_3d in the rounds")
    parser.add_argument("--store", help="store folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from handlabel.tasks.native_logs import quiet_native_logs

    quiet_native_logs()
    config = HandlabelConfig()
    networked = with_network_term(config, args.network_weight)
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = DatasetStore(args.store or str(folder / "store"))
        clips = labelled_clips(args.samples, args.frames, np.random.default_rng(args.seed),
                               load_occluders(), folder)
        started = time.perf_counter()
        videos = label_videos(store, [c.path for c in clips], config)
        tables.append(round_table(store, clips, videos, "0", time.perf_counter() - started))
        started = time.perf_counter()
        reconstruct_videos(store, videos, networked)
        tables.append(round_table(store, clips, videos, "0 + network term",
                                  time.perf_counter() - started))
        for k in range(1, args.rounds + 1):
            started = time.perf_counter()
            train_store(store, videos, config.train, logger=LOG, labels=LABEL_WEIGHTS)
            reconstruct_videos(store, videos, networked)
            tables.append(round_table(store, clips, videos, str(k),
                                      time.perf_counter() - started))
            print(pd.concat(tables).to_markdown(index=False, floatfmt=".3g"), flush=True)
    print(f"\n{len(clips)} clips, labelled images; labels and network against the truth\n")
    print(pd.concat(tables).to_markdown(index=False, floatfmt=".3g"))
    print("\n.venv/bin/python bench/rounds.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None))


if __name__ == "__main__":
    main()
