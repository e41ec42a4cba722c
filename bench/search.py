"""The search for lost hands on a crop, against the whole frame, on the labelled images.

    .venv/bin/python bench/search.py

For each image of ``../shared/data/labelled/``: MediaPipe on the whole image, and
``models/detectors/search.search_near`` given the true hand's box (what a track predicts at
best). A hand counts as found within 0.5 hand sizes (mean joint error); prints how many each
finds, and those only one finds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from handlabel.models.detectors.mediapipe import MediaPipeHandDetector
from handlabel.models.detectors.search import search_near
from handlabel.models.metrics.keypoints2d import hand_size
from handlabel.storage.labelled import read_labelled_manifest
from handlabel.tasks.native_logs import quiet_native_logs

MANIFEST = Path(__file__).resolve().parents[2] / "shared/data/labelled/manifest.json"
FOUND = 0.5  # mean joint error, hand sizes


def error(hand, sample) -> float:
    """Mean joint error of a found hand, in the sample's hand sizes."""
    seen = sample.visible
    distance = np.linalg.norm(hand.keypoints[seen] - sample.keypoints[seen], axis=1)
    return float(distance.mean() / hand_size(sample.keypoints, seen))


def main() -> None:
    quiet_native_logs()
    detector = MediaPipeHandDetector()
    rows = []
    for sample in read_labelled_manifest(MANIFEST):
        rgb, truth, seen = sample.load_rgb(), sample.keypoints, sample.visible
        whole = min((error(h, sample) for h in detector.detect_image(rgb)), default=np.inf)
        box = np.concatenate([truth[seen].min(0), truth[seen].max(0)])
        near = search_near(detector, rgb, box)
        rows.append({"sample": sample.id, "whole image": whole < FOUND,
                     "search": near is not None and error(near, sample) < FOUND})
    detector.close()
    table = pd.DataFrame(rows)
    print(f"{len(table)} labelled images: whole image finds {table['whole image'].sum()}, "
          f"the search on the true box {table['search'].sum()}; only the search "
          f"{(table['search'] & ~table['whole image']).sum()}, only the whole image "
          f"{(~table['search'] & table['whole image']).sum()}")
    print("\n.venv/bin/python bench/search.py")


if __name__ == "__main__":
    main()
