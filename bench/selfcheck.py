"""The labels' self-check on the sample videos: how well the fit carries a hand across
spans hidden from it, against a straight line between the detections either side, and what
it costs.

    .venv/bin/python bench/selfcheck.py [--spans 24] [--videos ...] [--store DIR]

Runs the stages up to reconstruct in one process (``bench/inprocess.py``; the default config,
training cut to one epoch over 64 hands: the labels do not depend on the network, issue 26),
then the self-check (``tasks/selfcheck.py``) with ``--spans`` spans per video (more than the
default 4, for a steadier figure) and prints, per video: hidden frames measured, the median
and 90th percentile of the labels' fit and of the straight line (pixels, and in hand sizes),
the share of hidden frames where the fit is the closer, the labels' own distance from the
detections on the frames the detector saw (the floor: a fit does not pass through noisy
detections, a straight line between two of them does, and the detector's noise is
correlated from frame to frame), and seconds per hidden span against the seconds of the
video's whole fit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VIDEOS = ("videos/right_hand_office.mp4", "videos/two_hands_cups.mp4",
          "videos/two_hands_coffee.mp4")
sys.path.insert(0, str(ROOT / "bench"))


def measure(store, video_id: str, config, spans: int) -> dict:
    from handlabel.models.keypoints import hand_sizes
    from handlabel.tasks.hand_fit import fit_video
    from handlabel.tasks.reconstruct import _network, model_version
    from handlabel.tasks.selfcheck import selfcheck_video

    settings = config.reconstruct.model_copy(update={"selfcheck": config.reconstruct.selfcheck
                                                     .model_copy(update={"spans": spans})})
    net, _ = _network(store.url, model_version(store))
    labels = store.stage(video_id, "reconstruct")
    for key in ("selfcheck_px", "selfcheck_interpolation_px"):
        labels.group[key][:] = np.nan
    started = time.perf_counter()
    selfcheck_video(store, video_id, net.hand_model, settings, labels)
    check_s = time.perf_counter() - started
    started = time.perf_counter()
    fit_video(store, video_id, net.hand_model, settings, labels)
    fit_s = time.perf_counter() - started
    fitted, straight = labels.read("selfcheck_px"), labels.read("selfcheck_interpolation_px")
    both = np.isfinite(fitted) & np.isfinite(straight)
    size = np.maximum(hand_sizes(store.stage(video_id, "detect").read("keypoints")[..., :2]), 1)
    frames = int(both.sum())
    measured = np.isfinite(fitted)
    fitted_spans = int((measured[1:] & ~measured[:-1]).sum() + measured[0].sum())
    row = store.manifest.get(video_id)
    seen = labels.read("reprojection_px")[labels.read("present") & ~labels.read("interpolated")]
    return {
        "video": row["name"], "frames": row["n_frames"], "hidden frames": frames,
        "labels px (median)": np.median(fitted[both]), "labels px (p90)":
        np.percentile(fitted[both], 90), "line px (median)": np.median(straight[both]),
        "line px (p90)": np.percentile(straight[both], 90),
        "labels (hand sizes)": np.median(fitted[both] / size[both]),
        "line (hand sizes)": np.median(straight[both] / size[both]),
        "labels closer": float((fitted[both] < straight[both]).mean()),
        "labels px, seen frames": float(np.nanmedian(seen)),
        "spans fitted": fitted_spans, "s per span": check_s / max(fitted_spans, 1),
        "s whole fit": fit_s,
    } if frames else {"video": row["name"], "frames": row["n_frames"], "hidden frames": 0}


def main(argv: list[str] | None = None) -> None:
    from inprocess import label_videos

    from handlabel.config import HandlabelConfig, TrainConfig
    from handlabel.storage.store import DatasetStore

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=24)
    parser.add_argument("--videos", nargs="+", default=list(VIDEOS))
    parser.add_argument("--store", help="keep the store here (reused when run again)")
    args = parser.parse_args(argv)
    config = HandlabelConfig(train=TrainConfig(epochs=1, max_samples=64))
    with tempfile.TemporaryDirectory() as scratch:
        store = DatasetStore(args.store or f"{scratch}/store")
        videos = label_videos(store, [DATA / v for v in args.videos], config)
        rows = [measure(store, v, config, args.spans) for v in videos]
    pd.set_option("display.width", 200)
    print(f"\nself-check, {args.spans} spans of {config.reconstruct.selfcheck.span_s} s per "
          f"video ({config.reconstruct.selfcheck.context_s} s of track either side)")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\n.venv/bin/python bench/selfcheck.py --spans {args.spans}")


if __name__ == "__main__":
    main()
