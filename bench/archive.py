"""A long archive end to end: how the pipeline's time grows with the footage, stage by stage.

    .venv/bin/python bench/archive.py --minutes 2 4 [--work DIR]

Builds an archive from the sample videos (the office video, both two-hand clips and both
cameras of the stereo pair), each copy a distinct variant (mirrored, zoomed in, brighter or
darker, re-timed to 1.5x), so that every file has its own content hash; 720p, 30 frames/s.
For each size (minutes of footage; each archive holds the smaller one's videos) it runs
``handlabel run`` on a fresh store as a user would (default config, a LocalCluster of 2
workers, the temporary Prefect API), and reports per stage the frames/s over the archive
(its first start to its last finish, from the manifest), the whole run's frames/s against
the bare detector (MediaPipe without views on the office video, in this process before
the runs), the peak memory of each kind of process (sampled every half second), and the
store's bytes per hour of footage. Variants are cached in ``--work``.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from pipeline import bare_detector_rate  # noqa: E402

from handlabel.storage.manifest import STAGES  # noqa: E402
from handlabel.storage.store import DatasetStore  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SOURCES = [DATA / "videos" / "right_hand_office.mp4", DATA / "videos" / "two_hands_cups.mp4",
           DATA / "videos" / "two_hands_coffee.mp4", DATA / "stereo" / "cam0.mp4",
           DATA / "stereo" / "cam1.mp4"]
FPS = 30


@dataclass(frozen=True)
class Variant:
    mirror: bool
    zoom: float  # the centre 1/zoom of the frame, scaled back to the frame's size
    brightness: int
    speed: float

    @property
    def name(self) -> str:
        return (f"{'m' if self.mirror else 'n'}-z{self.zoom:g}-b{self.brightness:+d}"
                f"-s{self.speed:g}")


def variants() -> list[Variant]:
    """Every combination but the source itself, in a fixed order."""
    grid = itertools.product([True, False], [1.0, 1.15, 1.3], [0, 12, -12], [1.0, 1.5])
    return [Variant(*v) for v in grid if v != (False, 1.0, 0, 1.0)]


def write_variant(source: Path, variant: Variant, path: Path) -> int:
    """The variant of ``source`` as H.264 at ``FPS``; returns its frames."""
    with av.open(str(source)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    picks = np.arange(0, len(frames), variant.speed).astype(int)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(FPS))
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "20", "preset": "veryfast"}
        height, width = frames[0].shape[:2]
        stream.height, stream.width = height, width
        for index in picks:
            image = _transformed(frames[index], variant)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.rename(path)
    return len(picks)


def _transformed(image: np.ndarray, variant: Variant) -> np.ndarray:
    height, width = image.shape[:2]
    if variant.zoom != 1.0:
        h, w = int(height / variant.zoom), int(width / variant.zoom)
        top, left = (height - h) // 2, (width - w) // 2
        image = cv2.resize(image[top : top + h, left : left + w], (width, height),
                           interpolation=cv2.INTER_LINEAR)
    if variant.mirror:
        image = image[:, ::-1]
    if variant.brightness:
        image = np.clip(image.astype(np.int16) + variant.brightness, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def build_archive(folder: Path, minutes: float) -> list[tuple[Path, int]]:
    """(path, frames) of variants, in a fixed order, until ``minutes`` of footage."""
    folder.mkdir(parents=True, exist_ok=True)
    videos, total = [], 0
    for variant in variants():
        for source in SOURCES:
            if total >= minutes * 60 * FPS:
                return videos
            path = folder / f"{source.stem}-{variant.name}.mp4"
            if path.exists():
                with av.open(str(path)) as container:
                    frames = container.streams.video[0].frames
            else:
                frames = write_variant(source, variant, path)
            videos.append((path, frames))
            total += frames
    raise ValueError(f"{minutes} minutes is more than the variants hold")


class PeakMemory:
    """Peak resident memory of a process tree, per kind of process, sampled in a thread."""

    def __init__(self, pid: int, every_s: float = 0.5):
        self.root, self.every, self.peaks = psutil.Process(pid), every_s, {}
        self.total_peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _kind(self, process: psutil.Process) -> str:
        if process.pid == self.root.pid:
            return "handlabel run (flows)"
        command = " ".join(process.cmdline())
        if "prefect" in command or "uvicorn" in command:
            return "Prefect API"
        if "spawn_main" in command or "distributed" in command:
            return "Dask worker or nanny"
        return "other"

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    rss, kind = process.memory_info().rss, self._kind(process)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                self.peaks[kind] = max(self.peaks.get(kind, 0), rss)
            self.total_peak = max(self.total_peak, total)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_archive(videos: list[tuple[Path, int]], folder: Path) -> dict:
    """``handlabel run`` on the videos into a fresh store: wall time, stages, memory."""
    sources = folder / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    for path, _ in videos:
        link = sources / path.name
        if not link.exists():
            link.symlink_to(path)
    store = folder / "store"
    command = [str(ROOT / ".venv" / "bin" / "handlabel"), "run", str(sources), "--store",
               str(store)]
    started = time.perf_counter()
    with open(folder / "run.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
        memory = PeakMemory(process.pid)
        code = process.wait()
        memory.stop()
    wall = time.perf_counter() - started
    if code:
        raise RuntimeError(f"handlabel run exited {code}: see {folder / 'run.log'}")
    table = DatasetStore(str(store)).manifest.table()
    frames = int(table["n_frames"].sum())
    row = {"videos": len(table), "frames": frames, "minutes": frames / FPS / 60, "wall s": wall,
           "frames/s": frames / wall}
    for stage in STAGES:
        span = (pd.to_datetime(table[f"{stage}_finished"]).max()
                - pd.to_datetime(table[f"{stage}_started"]).min()).total_seconds()
        row[f"{stage} s"] = span
        row[f"{stage} frames/s"] = frames / span if span > 0 else float("nan")
    hours = frames / FPS / 3600
    row["store GB/hour"] = _bytes(store, exclude="export") / hours / 1e9
    row["export GB/hour"] = _bytes(store / "export") / hours / 1e9
    row["peak MB"] = {kind: peak / 1e6 for kind, peak in memory.peaks.items()}
    row["peak MB, all processes"] = memory.total_peak / 1e6
    return row


def _bytes(folder: Path, exclude: str | None = None) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*")
               if p.is_file() and (exclude is None or exclude not in p.relative_to(folder).parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 10, 20])
    parser.add_argument("--work", type=Path, default=Path("/tmp/handlabel-archive"))
    args = parser.parse_args()
    detector = bare_detector_rate(SOURCES[0])
    rows = []
    for minutes in sorted(args.minutes):
        videos = build_archive(args.work / "variants", minutes)
        run = args.work / f"run-{minutes:g}min"
        shutil.rmtree(run, ignore_errors=True)
        rows.append(run_archive(videos, run))
    print(f"reproduce: .venv/bin/python bench/archive.py --minutes "
          f"{' '.join(f'{m:g}' for m in args.minutes)}; bare detector (MediaPipe, no views, "
          f"{SOURCES[0].name}) {detector:.1f} frames/s\n")
    print("| minutes | videos | frames | wall s | frames/s | x bare detector | "
          + " | ".join(f"{s} frames/s" for s in STAGES) + " | store GB/h | export GB/h |")
    print("|" + "--:|" * (8 + len(STAGES)))
    for row in rows:
        print(f"| {row['minutes']:.1f} | {row['videos']} | {row['frames']} | "
              f"{row['wall s']:.0f} | {row['frames/s']:.1f} | {row['frames/s'] / detector:.3f} | "
              + " | ".join(f"{row[f'{s} frames/s']:.1f}" for s in STAGES)
              + f" | {row['store GB/hour']:.2f} | {row['export GB/hour']:.2f} |")
    print("\nStage seconds (first start to last finish):\n")
    print(pd.DataFrame([{"minutes": round(r["minutes"], 1),
                         **{s: round(r[f"{s} s"]) for s in STAGES}} for r in rows]
                       ).to_markdown(index=False))
    print("\nPeak resident memory, MB (largest process of each kind; all processes at once):\n")
    print(pd.DataFrame([{"minutes": round(r["minutes"], 1), **{k: round(v) for k, v in
                                                              r["peak MB"].items()},
                         "all at once": round(r["peak MB, all processes"])} for r in rows]
                       ).to_markdown(index=False))
    if len(rows) > 1:
        base = rows[0]["wall s"] / rows[0]["frames"]
        print("\nGrowth: wall time per frame against the smallest archive's: " + ", ".join(
            f"{r['minutes']:.1f} min {r['wall s'] / r['frames'] / base:.2f}x" for r in rows))


if __name__ == "__main__":
    main()
