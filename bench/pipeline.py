"""End-to-end pipeline speed on this machine (CPU): the sample video through all six stages,
with a LocalCluster of 1 and then 2 Dask workers, each on a fresh store.

    .venv/bin/python bench/pipeline.py [--video ../shared/data/videos/right_hand_office.mp4]

Per-stage times are the manifest's (for the one video: from a stage's start to its end,
queueing on the cluster included); the total is the flow's wall time, Prefect and cluster
start-up included. Embedded defaults (train preset 'demo').
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from handlabel.config import DaskConfig, HandlabelConfig
from handlabel.flows.pipeline import run_pipeline
from handlabel.flows.runner import quiet_dask_logs
from handlabel.storage.manifest import STAGES
from handlabel.storage.store import DatasetStore


def one_run(video: Path, workers: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        config = HandlabelConfig(dask=DaskConfig(n_workers=workers))
        started = time.perf_counter()
        state = run_pipeline([str(video)], str(folder / "store"), config)
        wall = time.perf_counter() - started
        if not state.is_completed():
            raise RuntimeError(f"pipeline failed: {state.message}")
        row = DatasetStore(str(folder / "store")).manifest.table().iloc[0]
        result = {"workers": workers, "frames": int(row["n_frames"]), "wall s": wall,
                  "frames/s": row["n_frames"] / wall}
        result.update({f"{stage} s": row[f"{stage}_seconds"] for stage in STAGES})
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path,
                        default=Path("../shared/data/videos/right_hand_office.mp4"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    quiet_dask_logs()
    detector_rate = bare_detector_rate(args.video)
    rows = [one_run(args.video, n) for n in args.workers]
    for row in rows:
        row["x bare detector"] = f"{row['frames/s'] / detector_rate:.3f}"
    print(f"{args.video.name}, CPU, train preset demo; the bare detector (MediaPipe video "
          f"mode, no views, frames decoded beforehand) runs at {detector_rate:.1f} frames/s; "
          f"reproduce: .venv/bin/python bench/pipeline.py --workers "
          f"{' '.join(map(str, args.workers))}")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".1f"))
    if len(rows) > 1:
        base = rows[0]
        print("\nSpeed-up over one worker, per stage (its seconds with 1 / with N):")
        speedups = [{"workers": r["workers"], **{f"{s}": base[f"{s} s"] / r[f"{s} s"]
                                                  for s in STAGES if r[f"{s} s"]}}
                    for r in rows[1:]]
        print(pd.DataFrame(speedups).to_markdown(index=False, floatfmt=".2f"))


def bare_detector_rate(video: Path) -> float:
    """Frames per second of MediaPipe alone on the whole video (decoding not timed)."""
    from handlabel.models.detectors.mediapipe import MediaPipeHandDetector, MediaPipeOptions
    from handlabel.storage.video import iter_frames

    frames = list(iter_frames(str(video)))
    detector = MediaPipeHandDetector(MediaPipeOptions(tta=()))
    try:
        started = time.perf_counter()
        for _ in detector.detect_video([f for f, _ in frames], [t for _, t in frames]):
            pass
        return len(frames) / (time.perf_counter() - started)
    finally:
        detector.close()


if __name__ == "__main__":
    main()
