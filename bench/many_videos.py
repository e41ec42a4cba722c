"""Many small videos: per-stage wall time with 1 and N Dask workers, per video and as a
speed-up (what each small unit costs in scheduling and Prefect bookkeeping bounds scaling).

    .venv/bin/python bench/many_videos.py [--clips 12] [--frames 48] [--workers 1 2]

The sample video is cut into ``--clips`` distinct clips of ``--frames`` frames (distinct
content, so none is stored twice). Ingest, detect and weight run as Prefect flows on one
LocalCluster per worker count (started before the timing), each stage timed from submit to
its last result.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from prefect_dask import DaskTaskRunner

from handlabel.config import DaskConfig, HandlabelConfig, IngestConfig
from handlabel.flows.detect import detect_flow
from handlabel.flows.ingest import ingest_flow
from handlabel.flows.prefect_api import shared_prefect_api
from handlabel.flows.runner import dask_scheduler, quiet_dask_logs
from handlabel.flows.weight import weight_flow
from handlabel.storage.store import DatasetStore
from handlabel.storage.video import iter_frames
from handlabel.storage.video_writer import write_video

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/videos/right_hand_office.mp4"


def cut_clips(folder: Path, clips: int, frames: int) -> list[str]:
    decoded = [rgb for rgb, _ in iter_frames(str(SAMPLE))]
    paths = []
    for index in range(clips):
        part = decoded[index * frames:(index + 1) * frames]
        if len(part) < frames:
            break
        paths.append(str(folder / f"clip{index:02d}.mp4"))
        write_video(paths[-1], part, 30.0)
    return paths


def one_run(clips: list[str], workers: int, folder: Path) -> list[dict]:
    store = str(folder / f"store-{workers}")
    config = HandlabelConfig(dask=DaskConfig(n_workers=workers),
                             ingest=IngestConfig(chunk_frames=16))
    rows = []
    with dask_scheduler(config.dask) as address:
        runner = DaskTaskRunner(address=address)
        for name, call in (("ingest", lambda: ingest_flow.with_options(task_runner=runner)(
                                clips, store, config, return_state=True)),
                           ("detect", lambda: detect_flow.with_options(task_runner=runner)(
                               store, config, return_state=True)),
                           ("weight", lambda: weight_flow.with_options(task_runner=runner)(
                               store, config, return_state=True))):
            started = time.perf_counter()
            state = call()
            wall = time.perf_counter() - started
            if state.is_failed():
                raise RuntimeError(f"{name} failed: {state.message}")
            videos = len(DatasetStore(store).manifest.table())
            rows.append({"stage": name, "workers": workers, "videos": videos,
                         "wall s": wall, "s per video": wall / videos})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    quiet_dask_logs()
    with tempfile.TemporaryDirectory() as folder, shared_prefect_api():
        clips = cut_clips(Path(folder), args.clips, args.frames)
        rows = [r for n in args.workers for r in one_run(clips, n, Path(folder))]
    table = pd.DataFrame(rows)
    one = table[table["workers"] == args.workers[0]].set_index("stage")["wall s"]
    table["speed-up"] = [one[s] / w for s, w in zip(table["stage"], table["wall s"], strict=True)]
    print(f"\n{len(clips)} clips of {args.frames} frames (1280x720), chunks of 16 frames\n")
    print(table.to_markdown(index=False, floatfmt=".2f"))
    print(f"\nReproduce: .venv/bin/python bench/many_videos.py --clips {args.clips} "
          f"--frames {args.frames} --workers {' '.join(map(str, args.workers))}")


if __name__ == "__main__":
    main()
