"""Export stage: per video, the hand table, frame images and the overlay video; then, for the
whole store, the dataset files (Parquet, COCO-WholeBody, FreiHAND-style) and the report.

Everything goes under ``STORE/export/`` (any fsspec URL)::

    hands.parquet  videos.parquet  coco_wholebody_hands.json  freihand/{K,xyz,verts,mano,index}.json
    report.html  overlays/<video>.mp4  images/<video>/<frame>.jpg  rerun/<video>.rrd
    videos/<id>/...
    .dataset-files.json  what the dataset files were last made from (a rerun compares it)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath

import cv2
import numpy as np
import pandas as pd
from prefect import get_run_logger, task

from handlabel.config import ExportConfig, stage_config_hash
from handlabel.models.overlay import draw_mesh, draw_skeleton
from handlabel.models.render import make_renderer
from handlabel.models.training.setup import make_hand_model
from handlabel.storage.coco import coco_wholebody
from handlabel.storage.freihand import freihand_lists
from handlabel.storage.fs import filesystem, join
from handlabel.storage.hand_table import SIDES, video_hand_table, video_summary
from handlabel.storage.manifest import StageState
from handlabel.storage.report import render_report, timeline_plot
from handlabel.storage.store import DatasetStore
from handlabel.storage.video_writer import write_video

from .export_files import parquet_bytes, read_parquet, write_export
from .export_rerun import write_recording
from .retry import retry_transient
from .rig_export import export_rig, rig_export_version
from .rig_quality import rig_quality

STAGE = "export"
DATASET_FILES_RECORD = ".dataset-files.json"  # the version and URLs of the files last written


def video_folder(row: dict) -> str:
    """A readable, unique folder name per video: file stem and id prefix."""
    return f"{PurePosixPath(row['name'] or 'video').stem}-{row['video_id'][:8]}"


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def export_video(store: DatasetStore, video_id: str, config: ExportConfig,
                 overwrite: bool = False) -> str:
    """Per-video exports; returns 'exported' or 'skipped' (up to date)."""
    if not overwrite and export_is_current(store, video_id, config):
        return "skipped"
    row = store.manifest.get(video_id)
    version = _export_version(config, row)
    started = store.manifest.start_stage(video_id, STAGE, version)
    try:
        hands = video_hand_table(store, video_id, config.flag_below)
        folder = video_folder(row)
        write_export(store, f"videos/{video_id}/hands.parquet", parquet_bytes(hands))
        if config.images:
            _write_images(store, video_id, folder, hands, config)
        if "overlay" in config.formats:
            _write_overlay(store, video_id, folder, hands, config)
        if "report" in config.formats:
            _write_lowest(store, video_id, hands, config.report_lowest)
        if "rerun" in config.formats:
            write_recording(store, video_id, folder, config.overlay_max_side)
    except Exception as exc:
        store.manifest.finish_stage(video_id, STAGE, started, error=f"{video_id}: {exc}")
        raise
    store.manifest.finish_stage(video_id, STAGE, started, export_hands=len(hands))
    return "exported"


def export_is_current(store: DatasetStore, video_id: str, config: ExportConfig) -> bool:
    """Whether the video's exports are done with this config from its current labels."""
    row = store.manifest.get(video_id)
    return (row is not None and row["export_state"] == StageState.DONE
            and row["export_config_hash"] == _export_version(config, row))


def _export_version(config: ExportConfig, row: dict) -> str:
    """The export's cache key: its config and the reconstruction it was made from (recorded
    as the manifest's export config hash)."""
    inputs = f"{row['reconstruct_config_hash']}@{row['reconstruct_finished']}"
    key = f"{stage_config_hash(STAGE, config)}|{inputs}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


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


def _write_images(store, video_id, folder, hands, config: ExportConfig) -> None:
    detected = hands[~hands["interpolated"]]
    for index, rgb in _frames_of(store, video_id, np.unique(detected["frame"].to_numpy())):
        write_export(store, f"images/{folder}/{index:06d}.jpg", _jpeg(rgb, config.jpeg_quality))


def _write_overlay(store, video_id, folder, hands, config: ExportConfig) -> None:
    video, arrays = store.video(video_id), store.stage(video_id, "reconstruct")
    detect = store.stage(video_id, "detect")
    K = np.asarray(video.attrs["K"])
    hand_model = make_hand_model(store.model().attrs.get("hand_model", "default"))
    renderer, faces = make_renderer("deodr"), hand_model.faces
    height, width = video.frame_shape[:2]
    factor = min(1.0, config.overlay_max_side / max(height, width))
    size = (int(width * factor) // 2 * 2, int(height * factor) // 2 * 2)
    with_hands = np.unique(hands["frame"].to_numpy())
    samples = set(with_hands[np.linspace(0, len(with_hands) - 1, config.report_samples)
                             .round().astype(int)].tolist()) if len(with_hands) else set()

    def drawn():
        keys = ("present", "vertices", "keypoints_2d")
        for start in range(0, video.n_frames, video.chunk_frames):
            stop = min(start + video.chunk_frames, video.n_frames)
            frames = video.read(start, stop)
            values = {k: arrays.read(k, start, stop) for k in keys}
            boxes, mirrored = detect.read("box", start, stop), detect.read("mirrored", start, stop)
            for offset, rgb in enumerate(frames):
                image = rgb.copy()
                for slot in np.flatnonzero(values["present"][offset]):
                    draw_mesh(image, renderer, faces, values["vertices"][offset, slot],
                              boxes[offset, slot], K, bool(mirrored[offset, slot]))
                    draw_skeleton(image, values["keypoints_2d"][offset, slot],
                                  max(2, round(2 / factor)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                if start + offset in samples:
                    write_export(store, f"videos/{video_id}/samples/{start + offset:06d}.jpg",
                           _jpeg(image, 85))
                yield image

    url = join(store.url, "export", "overlays", f"{folder}.mp4")
    write_video(url, drawn(), float(video.attrs.get("fps") or 30.0), config.overlay_codec)


def _write_lowest(store, video_id: str, hands: pd.DataFrame, count: int) -> None:
    """The ``count`` detected hands of lowest quality, at least half a second apart (one
    bad moment shows once, not as eight neighbouring frames), as crops around the hand with
    the detection (white points) and the label (the coloured skeleton) drawn, for the
    report; the file name keeps frame, side, quality and reprojection error."""
    fs, folder = filesystem(join(store.url, "export", "videos", video_id, "lowest"))
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    detected = lowest_apart(hands[~hands["interpolated"]], count, LOWEST_APART_S)
    if not len(detected):
        return
    boxes = store.stage(video_id, "detect").read("box")
    by_frame = detected.groupby("frame")
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
                name = (f"{index:06d}_{hand.side}_q{hand.quality:.3f}_"
                        f"r{hand.reprojection_px:.1f}.jpg")
                write_export(store, f"videos/{video_id}/lowest/{name}", _jpeg(crop, 85))


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


def _lowest_hands(store, videos: list[str], rows: dict) -> list[tuple[str, bytes]]:
    """(caption, JPEG) of each video's lowest-quality hands, lowest first."""
    found = []
    for v in videos:
        fs, path = filesystem(join(store.url, "export", "videos", v, "lowest"))
        files = sorted(fs.glob(f"{path}/*.jpg")) if fs.exists(path) else []
        for file in files:
            frame, side, quality, error = PurePosixPath(file).stem.split("_")
            found.append((float(quality[1:]), f"{rows[v]['name']} frame {int(frame)} {side}: "
                          f"quality {quality[1:]}, {error[1:]} px", fs.cat_file(file)))
    return [(caption, jpeg) for _, caption, jpeg in sorted(found, key=lambda f: f[0])]


def export_dataset(store: DatasetStore, videos: list[str], config: ExportConfig) -> dict:
    """The dataset-wide files from the per-video exports; returns their URLs by name."""
    rows = {v: store.manifest.get(v) for v in videos}
    tables = [read_parquet(store, f"videos/{v}/hands.parquet") for v in videos]
    hands = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    summary = pd.DataFrame([{"video_id": v, "name": rows[v]["name"],
                             **video_summary(t, rows[v]["n_frames"])}
                            for v, t in zip(videos, tables, strict=True)])
    written = {}
    if "parquet" in config.formats:
        written["hands"] = write_export(store, "hands.parquet", parquet_bytes(hands))
        written["videos"] = write_export(store, "videos.parquet", parquet_bytes(summary))
    # the COCO and FreiHAND files hold detected hands only; hands.parquet has every hand
    kept = hands[~hands["interpolated"] & (hands["quality"] >= config.min_quality)] \
        if len(hands) else hands
    if "coco" in config.formats:
        images = _image_records(store, rows, kept)
        coco = coco_wholebody(kept, images)
        written["coco"] = write_export(store, "coco_wholebody_hands.json",
                                       json.dumps(coco).encode())
    if "freihand" in config.formats:
        written["freihand"] = _write_freihand(store, kept)
    rigs = labelled_rigs(store)
    for name in rigs:
        written[f"rig {name}"] = export_rig(store, name, config)
    if "report" in config.formats:
        written["report"] = _write_report(store, videos, rows, hands, summary, config, rigs)
    files = [path for value in written.values()
             for path in (value if isinstance(value, list) else [value])]
    record = {"version": dataset_files_version(store, videos, config), "files": files}
    write_export(store, DATASET_FILES_RECORD, json.dumps(record).encode())
    return written


def dataset_files_version(store: DatasetStore, videos: list[str], config: ExportConfig) -> str:
    """What the dataset files are made from: the export config, each video's export and each
    labelled rig's."""
    parts = [stage_config_hash(STAGE, config)]
    for video_id in sorted(videos):
        row = store.manifest.get(video_id)
        parts.append(f"{video_id}@{row['export_config_hash']}@{row['export_finished']}")
    parts += [f"rig {name}@{rig_export_version(store, name, config)}"
              for name in labelled_rigs(store)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def dataset_files_current(store: DatasetStore, videos: list[str], config: ExportConfig) -> bool:
    """Whether the dataset files were last written from exactly these videos' exports (and
    rigs') with this config, and are all still there."""
    fs, path = filesystem(join(store.url, "export", DATASET_FILES_RECORD))
    try:
        record = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return False
    if record.get("version") != dataset_files_version(store, videos, config):
        return False
    return all(_exists(url) for url in record.get("files", []))


def _exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def labelled_rigs(store: DatasetStore) -> list[str]:
    """The store's rigs whose labels are complete."""
    return [name for name in store.rig_names()
            if (labels := store.rig_stage(name, "labels")) is not None
            and labels.attrs.get("complete")]


def _image_records(store, rows, hands) -> dict:
    records = {}
    for (video_id, frame), _ in hands.groupby(["video_id", "frame"]):
        height, width = store.video(video_id).frame_shape[:2]
        records[video_id, int(frame)] = {
            "file_name": f"images/{video_folder(rows[video_id])}/{int(frame):06d}.jpg",
            "width": int(width), "height": int(height)}
    return records


def _write_freihand(store, hands: pd.DataFrame) -> str:
    vertices = []
    for video_id, part in hands.groupby("video_id", sort=False):
        stored = store.stage(video_id, "reconstruct").read("vertices")
        slots = (part["side"] == "right").astype(int).to_numpy()
        vertices += list(stored[part["frame"].to_numpy(), slots])
    ordered = pd.concat([p for _, p in hands.groupby("video_id", sort=False)]) if len(hands) \
        else hands
    K = {v: np.asarray(store.video(v).attrs["K"]) for v in ordered["video_id"].unique()} \
        if len(hands) else {}
    files = freihand_lists(ordered, vertices, K)
    for name, content in files.items():
        write_export(store, f"freihand/{name}.json", json.dumps(content).encode())
    return join(store.url, "export", "freihand")


def _write_report(store, videos, rows, hands, summary, config, rigs=()) -> str:
    timelines = [timeline_plot(hands[hands["video_id"] == v], rows[v]["n_frames"],
                               rows[v]["name"]) for v in videos]
    samples = []
    for v in videos:
        fs, path = filesystem(join(store.url, "export", "videos", v, "samples"))
        for file in sorted(fs.glob(f"{path}/*.jpg")) if fs.exists(path) else []:
            samples.append((f"{rows[v]['name']} frame {int(PurePosixPath(file).stem)}",
                            fs.cat_file(file)))
    metrics = store.model().read_metrics() if store.has_model() else pd.DataFrame()
    interpolated = int(hands["interpolated"].sum()) if len(hands) else 0
    notes = [f"Store: {store.url}",
             f"{len(hands)} hands in {len(videos)} videos, {interpolated} of them "
             "interpolated between detections by the sequence fit.",
             "Quality = evidence x exp(-(weighted reprojection error / hand size) / "
             "reconstruct.quality_scale) x exp(-(disagreement with the detector's 3D) / "
             "reconstruct.quality_teacher_scale); hands under export.flag_below "
             f"({config.flag_below}) are flagged low_quality. The COCO and FreiHAND files keep "
             f"detected hands with quality >= {config.min_quality}."]
    notes += [_rig_note(row) for name in rigs for row in rig_quality(store, name).to_dict(
        orient="records")]
    page = render_report("handlabel quality report", summary, hands, timelines, metrics,
                         samples, notes, _lowest_hands(store, videos, rows))
    return write_export(store, "report.html", page.encode())


def _rig_note(row: dict) -> str:
    return (f"Rig {row['rig']}, held-out view: {row['from']}'s own labels carried into "
            f"{row['to']} land {row['held-out px (mean)']:.1f} px (median "
            f"{row['held-out px (median)']:.1f}) from {row['to']}'s detections over "
            f"{row['frames']} hands; the rig's labels, fitted over every camera, "
            f"{row['rig labels px in target (median)']:.1f} px (median).")


@task(name="export-video", task_run_name="export {video_id}", retries=1,
      retry_condition_fn=retry_transient, retry_delay_seconds=1)
def export_video_task(store_url: str, video_id: str, config: ExportConfig,
                      overwrite: bool = False) -> str:
    return export_video(DatasetStore(store_url), video_id, config, overwrite)


@task(name="export-dataset", task_run_name="export dataset files")
def export_dataset_task(store_url: str, videos: list[str], config: ExportConfig) -> dict:
    written = export_dataset(DatasetStore(store_url), videos, config)
    get_run_logger().info("exported %s", ", ".join(written))
    return written
