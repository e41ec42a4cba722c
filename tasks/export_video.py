"""Export stage, per video: the hand table and the work split per chunk, so that one long
video keeps every Dask worker busy::

    prepare   the video's hand table (export/videos/<id>/hands.parquet); the chunks to do
    chunk     its frames' JPEGs (export/images/<video>/), its part of the overlay video
              (export/videos/<id>/overlay-parts/<chunk>.mp4) and the report's sample frames
    after     the parts joined into export/overlays/<video>.mp4 without encoding again, the
              report's lowest-quality crops and (format rerun) the Rerun recording
    finish    the outcome in the manifest

Each chunk reads and decodes its frames once, for every output that needs them.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
from prefect import task

from handlabel.config import ExportConfig, HandlabelConfig
from handlabel.keys import stage_key
from handlabel.models.overlay import draw_mesh, draw_skeleton
from handlabel.models.render import make_renderer
from handlabel.models.training.setup import make_hand_model
from handlabel.storage.fs import filesystem, join
from handlabel.storage.hand_table import SIDES, video_hand_table
from handlabel.storage.manifest import StageState
from handlabel.storage.store import DatasetStore
from handlabel.storage.video_writer import concatenate_videos, write_video

from .export import (
    DATASET_FILES,
    LOWEST_INDEX,
    STAGE,
    dataset_files_current,
    exported_videos,
    jpeg_bytes,
    url_exists,
    video_folder,
)
from .export_files import parquet_bytes, read_parquet, write_export
from .export_rerun import write_recording
from .retry import retry_transient

PARTS = "overlay-parts"
# x264's veryfast preset for the overlay (a preview, not the dataset): 0.40 s against the
# default preset's 0.65 s for a 64-frame chunk of the office video (docs/performance.md)
OVERLAY_ENCODING = {"preset": "veryfast"}


def prepare_export(store: DatasetStore, video_id: str, config: ExportConfig,
                   overwrite: bool = False) -> list[int] | None:
    """Write the video's hand table and return its chunks; None when its exports are
    current."""
    if not overwrite and export_is_current(store, video_id, config):
        return None
    store.manifest.start_stage(video_id, STAGE, _export_version(config, store, video_id))
    hands = video_hand_table(store, video_id, config.flag_below, config.min_track_s)
    write_export(store, f"videos/{video_id}/hands.parquet", parquet_bytes(hands))
    for folder in (PARTS, "samples"):  # a new export's, not an earlier one's
        _remove(store, f"videos/{video_id}/{folder}")
    return list(range(store.video(video_id).n_chunks))


def export_chunk(store: DatasetStore, video_id: str, chunk: int, config: ExportConfig) -> int:
    """One chunk's JPEGs, overlay part and report samples; returns its frames with hands."""
    video = store.video(video_id)
    start = chunk * video.chunk_frames
    stop = min(start + video.chunk_frames, video.n_frames)
    hands = read_parquet(store, f"videos/{video_id}/hands.parquet")
    frames = video.read(start, stop)
    folder = video_folder(store.manifest.get(video_id))
    if config.images:
        detected = np.unique(hands.loc[~hands["interpolated"], "frame"].to_numpy())
        for index in detected[(detected >= start) & (detected < stop)]:
            write_export(store, f"images/{folder}/{index:06d}.jpg",
                         jpeg_bytes(frames[index - start], config.jpeg_quality))
    if "overlay" in config.formats and len(overlay_frames(start, stop, video.n_frames, config)):
        _write_overlay_part(store, video_id, chunk, start, frames, hands, config)
    return int(((hands["frame"] >= start) & (hands["frame"] < stop)).sum())


def overlay_step(n_frames: int, config: ExportConfig) -> int:
    """Every how many frames a video's overlay shows one (``export.overlay_max_frames``).

    >>> overlay_step(621, ExportConfig()), overlay_step(108_000, ExportConfig())
    (1, 12)
    """
    limit = config.overlay_max_frames
    return 1 if limit is None or n_frames <= limit else -(-n_frames // limit)


def overlay_frames(start: int, stop: int, n_frames: int, config: ExportConfig) -> np.ndarray:
    """The frames of [start, stop) that a video of ``n_frames`` shows in its overlay."""
    step = overlay_step(n_frames, config)
    return np.arange(-(-start // step) * step, stop, step)


def _write_overlay_part(store, video_id, chunk, start, frames, hands, config) -> None:
    """The chunk's overlay frames (mesh and skeleton drawn on the frame scaled to
    ``overlay_max_side``) as one video part; the report's sample frames among them as JPEGs."""
    video, arrays = store.video(video_id), store.stage(video_id, "reconstruct")
    detect = store.stage(video_id, "detect")
    K = np.asarray(video.attrs["K"])
    hand_model = make_hand_model(store.model().attrs.get("hand_model", "default"))
    renderer, faces = make_renderer("deodr"), hand_model.faces
    height, width = video.frame_shape[:2]
    factor = min(1.0, config.overlay_max_side / max(height, width))
    size = (int(width * factor) // 2 * 2, int(height * factor) // 2 * 2)
    scale = np.array([size[0] / width, size[1] / height])  # frame -> overlay pixels
    to_overlay = np.diag([*scale, 1.0])
    step = overlay_step(video.n_frames, config)
    samples = report_samples(hands, config.report_samples, step)
    stop = start + len(frames)
    values = {k: arrays.read(k, start, stop) for k in ("present", "vertices", "keypoints_2d")}
    boxes, mirrored = detect.read("box", start, stop), detect.read("mirrored", start, stop)

    def drawn():
        for index in overlay_frames(start, stop, video.n_frames, config):
            offset = index - start
            image = cv2.resize(frames[offset], size, interpolation=cv2.INTER_AREA)
            for slot in np.flatnonzero(values["present"][offset]):
                draw_mesh(image, renderer, faces, values["vertices"][offset, slot],
                          boxes[offset, slot] * np.tile(scale, 2), to_overlay @ K,
                          bool(mirrored[offset, slot]))
                draw_skeleton(image, values["keypoints_2d"][offset, slot] * scale)
            if index in samples:
                write_export(store, f"videos/{video_id}/samples/{index:06d}.jpg",
                             jpeg_bytes(image, 85))
            yield image

    write_video(_part_url(store, video_id, chunk), drawn(),
                float(video.attrs.get("fps") or 30.0) / step, config.overlay_codec,
                OVERLAY_ENCODING)


def report_samples(hands: pd.DataFrame, count: int, step: int = 1) -> set[int]:
    """The frames the report shows: ``count`` frames with hands, evenly spread, among the
    overlay's (every ``step``-th frame)."""
    with_hands = np.unique(hands["frame"].to_numpy())
    with_hands = with_hands[with_hands % step == 0]
    if not len(with_hands) or not count:
        return set()
    picks = np.linspace(0, len(with_hands) - 1, count).round().astype(int)
    return set(with_hands[picks].tolist())


def _part_url(store: DatasetStore, video_id: str, chunk: int) -> str:
    return join(store.url, "export", "videos", video_id, PARTS, f"{chunk:05d}.mp4")


def finish_video_export(store: DatasetStore, video_id: str, config: ExportConfig) -> int:
    """Once every chunk is done: the overlay joined from its parts, the lowest-quality
    crops and the Rerun recording; returns the video's hand count."""
    hands = read_parquet(store, f"videos/{video_id}/hands.parquet")
    folder = video_folder(store.manifest.get(video_id))
    if "overlay" in config.formats:
        parts = [_part_url(store, video_id, c) for c in _overlay_chunks(store, video_id, config)]
        missing = [p for p in parts if not url_exists(p)]
        if missing:
            raise RuntimeError(f"{video_id}: overlay parts missing ({len(missing)} of "
                               f"{len(parts)}: their chunks' workers lost?); rerun export")
        concatenate_videos(parts, join(store.url, "export", "overlays", f"{folder}.mp4"))
        _remove(store, f"videos/{video_id}/{PARTS}")
    if "report" in config.formats:
        _write_lowest(store, video_id, hands, config.report_lowest)
    if "rerun" in config.formats:
        write_recording(store, video_id, folder, config.overlay_max_side)
    return len(hands)


def _overlay_chunks(store: DatasetStore, video_id: str, config: ExportConfig) -> list[int]:
    """The chunks with a part of the overlay (every chunk, unless it is thinned to fewer
    frames than there are chunks)."""
    video = store.video(video_id)
    cf = video.chunk_frames
    return [c for c in range(video.n_chunks)
            if len(overlay_frames(c * cf, min((c + 1) * cf, video.n_frames), video.n_frames,
                                  config))]


def finish_export(store: DatasetStore, video_id: str, error: str | None = None) -> dict:
    """Record the video's export outcome (and its hand count) in the manifest."""
    row = store.manifest.get(video_id)
    fields = {}
    if error is None:
        fields["export_hands"] = len(read_parquet(store, f"videos/{video_id}/hands.parquet"))
    return store.manifest.finish_stage(video_id, STAGE, row["export_started"], error, **fields)


def _remove(store: DatasetStore, relative: str) -> None:
    fs, path = filesystem(join(store.url, "export", relative))
    if fs.exists(path):
        fs.rm(path, recursive=True)


def export_is_current(store: DatasetStore, video_id: str, config: ExportConfig) -> bool:
    """Whether the video's exports are done with this config from its current labels."""
    row = store.manifest.get(video_id)
    return (row is not None and row["export_state"] == StageState.DONE
            and row["export_config_hash"] == _export_version(config, store, video_id))


def is_current(store: DatasetStore, unit: str, config: HandlabelConfig) -> bool:
    """The stage registry's currency test (flows/stages.py): a video's exports, or the
    dataset files (``DATASET_FILES``) over every exported video."""
    if unit != DATASET_FILES:
        return export_is_current(store, unit, config.export)
    exported = exported_videos(store)
    return not exported or dataset_files_current(store, exported, config.export)


def _export_version(config: ExportConfig, store: DatasetStore, video_id: str) -> str:
    """The export's cache key: its config and the labels it was made from (recorded as the
    manifest's export config hash)."""
    return stage_key(STAGE, config, inputs=[store.labels_version(video_id)])


def _frames_of(store: DatasetStore, video_id: str, wanted: np.ndarray):
    """(index, RGB frame) for the wanted frame indices, read chunk by chunk."""
    video = store.video(video_id)
    for start in range(0, video.n_frames, video.chunk_frames):
        stop = min(start + video.chunk_frames, video.n_frames)
        picks = wanted[(wanted >= start) & (wanted < stop)]
        if len(picks):
            chunk = video.read(start, stop)
            for index in picks:
                yield int(index), chunk[index - start]


def _write_lowest(store, video_id: str, hands: pd.DataFrame, count: int) -> None:
    """The ``count`` detected hands of lowest quality, at least half a second apart (one
    bad moment shows once, not as eight neighbouring frames), as crops around the hand with
    the detection (white points) and the label (the coloured skeleton) drawn, for the
    report; ``lowest/index.json`` lists each crop's file, frame, side, quality and
    reprojection error (NaN where no joint kept a weight: not measured)."""
    fs, folder = filesystem(join(store.url, "export", "videos", video_id, "lowest"))
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    detected = lowest_apart(hands[~hands["interpolated"]], count, LOWEST_APART_S)
    if not len(detected):
        return
    boxes = store.stage(video_id, "detect").read("box")
    by_frame, index_rows = detected.groupby("frame"), []
    for index, rgb in _frames_of(store, video_id, np.asarray(sorted(by_frame.groups))):
        for hand in by_frame.get_group(index).itertuples():
            slot = SIDES.index(hand.side)
            image = rgb.copy()
            for x, y in np.asarray(hand.keypoints_detected).reshape(21, 2).round().astype(int):
                cv2.circle(image, (int(x), int(y)), 3, (255, 255, 255), -1, cv2.LINE_AA)
            draw_skeleton(image, np.asarray(hand.keypoints_2d).reshape(21, 2))
            x0, y0, x1, y1 = np.round(boxes[index, slot]).astype(int)
            crop = image[max(y0, 0):max(y1, 1), max(x0, 0):max(x1, 1)]
            if crop.size:
                crop = cv2.resize(crop, (200, 200), interpolation=cv2.INTER_AREA)
                name = f"{index:06d}_{hand.side}.jpg"
                write_export(store, f"videos/{video_id}/lowest/{name}", jpeg_bytes(crop, 85))
                index_rows.append({"file": name, "frame": int(index), "side": hand.side,
                                   "quality": float(hand.quality),
                                   "reprojection_px": float(hand.reprojection_px)})
    write_export(store, f"videos/{video_id}/{LOWEST_INDEX}",
                 json.dumps(index_rows, allow_nan=True).encode())


LOWEST_APART_S = 0.5


def lowest_apart(hands: pd.DataFrame, count: int, apart_s: float) -> pd.DataFrame:
    """Up to ``count`` hands of lowest quality, each at least ``apart_s`` from the others."""
    picked: list[int] = []
    for index, time_s in hands.sort_values("quality")["time_s"].items():
        if len(picked) == count:
            break
        if all(abs(time_s - hands.at[other, "time_s"]) >= apart_s for other in picked):
            picked.append(index)
    return hands.loc[picked]


@task(name="export-prepare", task_run_name="export-prepare {video_id}")
def prepare_export_task(store_url: str, video_id: str, config: ExportConfig,
                        overwrite: bool = False) -> list[int] | None:
    return prepare_export(DatasetStore(store_url), video_id, config, overwrite)


@task(name="export-chunks", task_run_name="export {video_id} chunks {chunks}", retries=1,
      retry_condition_fn=retry_transient, retry_delay_seconds=1)
def export_chunk_task(store_url: str, video_id: str, chunks: list[int], config: ExportConfig
                      ) -> int:
    store = DatasetStore(store_url)
    return sum(export_chunk(store, video_id, chunk, config) for chunk in chunks)


@task(name="export-video", task_run_name="export-video {video_id}", retries=1,
      retry_condition_fn=retry_transient, retry_delay_seconds=1)
def finish_video_export_task(store_url: str, video_id: str, config: ExportConfig) -> int:
    return finish_video_export(DatasetStore(store_url), video_id, config)


@task(name="export-finish", task_run_name="export-finish {video_id}")
def finish_export_task(store_url: str, video_id: str, error: str | None = None) -> dict:
    return finish_export(DatasetStore(store_url), video_id, error)
