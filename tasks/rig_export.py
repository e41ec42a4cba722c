"""A calibrated rig's exports (written by the export stage, from the rig stage's labels),
under ``STORE/export/``::

    rigs/<name>/hands.parquet      a row per rig frame and hand (storage/rig_table.py)
    rigs/<name>/calibration.json   the calibration the labels are in (metres: unit_m)
    overlays/rig-<name>-<camera>.mp4   each camera's video with the rig's labels drawn
    rerun/rig-<name>.rrd           (format rerun) every camera in one world frame, with the hands

The overlays draw the fitted joints projected through each camera's lens distortion. A rig
whose labels and export config are unchanged since its last export is not written again.
"""

from __future__ import annotations

import cv2
import numpy as np

from handlabel.config import ExportConfig
from handlabel.keys import stage_key
from handlabel.models.overlay import draw_skeleton
from handlabel.storage.fs import join
from handlabel.storage.rig_table import rig_hand_table
from handlabel.storage.store import DatasetStore
from handlabel.storage.video_writer import write_video

from .export_files import parquet_bytes, write_export
from .rig_rerun import write_rig_recording


def export_rig(store: DatasetStore, name: str, config: ExportConfig,
               overwrite: bool = False) -> list[str]:
    """Write the rig's table, calibration and, as the config's formats ask, one overlay video
    per camera and the rig's Rerun recording; returns the URLs written (none when up to
    date)."""
    version = rig_export_version(store, name, config)
    if not overwrite and store.rig(name).attrs.get("export_version") == version:
        return []
    attrs = dict(store.rig(name).attrs)
    written = [write_export(store, f"rigs/{name}/hands.parquet",
                      parquet_bytes(rig_hand_table(store, name))),
               write_export(store, f"rigs/{name}/calibration.json", attrs["calibration"].encode())]
    if "overlay" in config.formats:
        for index, camera in enumerate(attrs["cameras"]):
            written.append(_write_overlay(store, name, attrs, index, camera, config))
    if "rerun" in config.formats:
        written.append(write_rig_recording(store, name, config.overlay_max_side,
                                           config.jpeg_quality))
    store.rig(name).attrs["export_version"] = version
    return written


def rig_export_version(store: DatasetStore, name: str, config: ExportConfig) -> str:
    labels = store.rig_stage(name, "labels").attrs
    return stage_key("export.rig", config,
                     inputs=[str(labels.get("config_hash")), str(labels.get("inputs"))])


def _write_overlay(store, name, attrs, index: int, camera: str, config: ExportConfig) -> str:
    video = store.video(attrs["members"][camera])
    labels = store.rig_stage(name, "labels")
    present = labels.read("present")
    keypoints = labels.read("keypoints_2d")[:, :, index]
    offset, n = attrs["offsets"][camera], attrs["n_frames"]
    height, width = video.frame_shape[:2]
    factor = min(1.0, config.overlay_max_side / max(height, width))
    size = (int(width * factor) // 2 * 2, int(height * factor) // 2 * 2)

    def drawn():
        for start in range(offset, offset + n, video.chunk_frames):
            stop = min(start + video.chunk_frames, offset + n)
            for frame, rgb in enumerate(video.read(start, stop), start=start - offset):
                image = rgb.copy()
                for hand in np.flatnonzero(present[frame]):
                    draw_skeleton(image, keypoints[frame, hand], max(2, round(2 / factor)))
                yield cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    url = join(store.url, "export", "overlays", f"rig-{name}-{camera}.mp4")
    write_video(url, drawn(), float(video.attrs.get("fps") or 30.0), config.overlay_codec)
    return url
