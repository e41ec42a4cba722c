"""Export stage, store-wide: the dataset files (Parquet, COCO-WholeBody, FreiHAND-style) and
the report, from the per-video exports (``export_video.py``). Everything goes under
``STORE/export/`` (any fsspec URL)::

    hands.parquet  videos.parquet  coco_wholebody_hands.json  freihand/{K,xyz,verts,mano,index}.json
    report.html  overlays/<video>.mp4  images/<video>/<frame>.jpg  rerun/<video>.rrd
    videos/<id>/...
    .dataset-files.json  what the dataset files were last made from (a rerun compares it)
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import cv2
import numpy as np
import pandas as pd
from prefect import get_run_logger, task

from handlabel.config import ExportConfig
from handlabel.keys import stage_key
from handlabel.storage.coco import coco_wholebody
from handlabel.storage.freihand import freihand_lists
from handlabel.storage.fs import filesystem, join
from handlabel.storage.hand_table import video_summary
from handlabel.storage.report import render_report, timeline_plot
from handlabel.storage.store import DatasetStore

from .export_files import parquet_bytes, read_parquet, write_export
from .rig_export import export_rig, rig_export_version
from .rig_quality import rig_in_sample, rig_quality
from .rounds import read_record

STAGE = "export"
DATASET_FILES = "dataset files"  # export's store-wide unit, beside its videos
LOWEST_INDEX = "lowest/index.json"  # the report's crops: file, frame, side, quality, error
DATASET_FILES_RECORD = ".dataset-files.json"  # the version and URLs of the files last written


def video_folder(row: dict) -> str:
    """A readable, unique folder name per video: file stem and id prefix."""
    return f"{PurePosixPath(row['name'] or 'video').stem}-{row['video_id'][:8]}"


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def _lowest_hands(store, videos: list[str], rows: dict) -> list[tuple[str, bytes]]:
    """(caption, JPEG) of each video's lowest-quality hands, lowest first (from each
    video's ``lowest/index.json``)."""
    found = []
    for v in videos:
        index_url = join(store.url, "export", "videos", v, LOWEST_INDEX)
        fs, path = filesystem(index_url)
        if not fs.exists(path):
            continue
        for crop in json.loads(fs.cat_file(path)):
            error = crop["reprojection_px"]
            measured = (f"{error:.1f} px" if np.isfinite(error) else "no joint kept any "
                        "weight (the weight stage rejected every detection): not measured")
            jpeg = fs.cat_file(f"{path.rsplit('/', 1)[0]}/{crop['file']}")
            found.append((crop["quality"], f"{rows[v]['name']} frame {crop['frame']} "
                          f"{crop['side']}: quality {crop['quality']:.3f}, {measured}", jpeg))
    return [(caption, jpeg) for _, caption, jpeg in sorted(found, key=lambda f: f[0])]


def _selfcheck_columns(row: dict) -> dict:
    """The video's self-check from its manifest row (None where it was not run)."""
    return {"selfcheck_frames": row.get("reconstruct_selfcheck_frames"),
            "selfcheck_px": row.get("reconstruct_selfcheck_px"),
            "selfcheck_interpolation_px": row.get("reconstruct_selfcheck_interpolation_px")}


def _labels_round(store: DatasetStore, video_id: str) -> int:
    """Which round of fit and training the video's labels come from (0: the train and
    reconstruct stages'; ``tasks/rounds.py``)."""
    return int(store.stage(video_id, "reconstruct").attrs.get("round", 0))


def export_dataset(store: DatasetStore, videos: list[str], config: ExportConfig) -> dict:
    """The dataset-wide files from the per-video exports; returns their URLs by name."""
    rows = {v: store.manifest.get(v) for v in videos}
    tables = [read_parquet(store, f"videos/{v}/hands.parquet") for v in videos]
    hands = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    summary = pd.DataFrame([{"video_id": v, "name": rows[v]["name"],
                             **video_summary(t, rows[v]["n_frames"]),
                             **_selfcheck_columns(rows[v]),
                             "labels_round": _labels_round(store, v)}
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


def exported_videos(store: DatasetStore) -> list[str]:
    """The videos the dataset files are written over: reconstructed and exported now."""
    exported = set(store.videos_done("export"))
    return [v for v in store.videos_done("reconstruct") if v in exported]


def dataset_files_version(store: DatasetStore, videos: list[str], config: ExportConfig) -> str:
    """What the dataset files are made from: the export config, each video's export and each
    labelled rig's."""
    parts = []
    for video_id in sorted(videos):
        row = store.manifest.get(video_id)
        parts.append(f"{video_id}@{row['export_config_hash']}@{row['export_finished']}")
    parts += [f"rig {name}@{rig_export_version(store, name, config)}"
              for name in labelled_rigs(store)]
    if record := read_record(store):  # the report's table of rounds
        parts.append(f"rounds {record.get('key')}")
    return stage_key(f"{STAGE}.dataset", config, inputs=parts)


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
    return all(url_exists(url) for url in record.get("files", []))


def url_exists(url: str) -> bool:
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
             f"detected hands with quality >= {config.min_quality}. A hand whose joints all "
             "lost their weight (the weight stage rejected every one) has quality 0 and no "
             "reprojection error (NaN: not measured); where the detector gave no 3D, the "
             "teacher residual is NaN and does not lower the quality.",
             "Self-check (no ground truth needed): in each video a few spans of "
             "its tracks (reconstruct.selfcheck) are hidden from a fit of the window around "
             "them; selfcheck_px is the median distance of that fit from the hidden "
             "detections, selfcheck_interpolation_px that of a straight line between the "
             "detections either side. It is how well the labels carry a hand across frames "
             "the detector missed; the detections' own noise is part of both figures."]
    for name in rigs:
        notes += [_held_out_note(row) for row in rig_quality(store, name).to_dict("records")]
        notes.append(_in_sample_note(name, rig_in_sample(store, name)))
    page = render_report("handlabel quality report", summary, hands, timelines, metrics,
                         samples, notes, _lowest_hands(store, videos, rows),
                         rounds_table(read_record(store)))
    return write_export(store, "report.html", page.encode())


def rounds_table(record: dict) -> tuple[pd.DataFrame, str] | None:
    """The rounds of fit and training (``tasks/rounds.py``) as the report shows them: per
    round its self-check over the store and whether its labels were kept; and why they
    stopped. None where the store never ran rounds."""
    if not record.get("rounds"):
        return None
    table = pd.DataFrame(record["rounds"]).rename(columns={
        "frames": "hidden frames", "labels_px": "self-check px",
        "interpolation_px": "straight line px"})
    return table, (f"The dataset's labels are round {record['kept']}'s. "
                   f"{record.get('stopped', '')}.")


def _held_out_note(row: dict) -> str:
    return (f"Rig {row['rig']}, held-out view: {row['from']}'s own labels carried into "
            f"{row['to']} land {row['held-out px (mean)']:.1f} px (median "
            f"{row['held-out px (median)']:.1f}) from {row['to']}'s detections over "
            f"{row['frames']} hands.")


def _in_sample_note(name: str, cameras: pd.DataFrame) -> str:
    residuals = ", ".join(f"{row['camera']} {row['in-sample px (median)']:.1f} px"
                          for row in cameras.to_dict("records"))
    return (f"Rig {name}, in-sample (not comparable with the held-out figures above): the rig's "
            f"labels were fitted to every camera's detections and stay within a median of "
            f"{residuals} of them.")


@task(name="export-dataset", task_run_name="export dataset files")
def export_dataset_task(store_url: str, videos: list[str], config: ExportConfig) -> dict:
    written = export_dataset(DatasetStore(store_url), videos, config)
    get_run_logger().info("exported %s", ", ".join(written))
    return written
