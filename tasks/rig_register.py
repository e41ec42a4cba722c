"""Rigs at ingest: each camera's video gets the calibration's intrinsics, and once the videos
are in the store each rig is checked (one video per camera, the calibration's frame size,
synchronised timestamps) and recorded as ``rigs/<name>/``."""

from __future__ import annotations

import fnmatch

import numpy as np
from prefect import task

from handlabel.config import IngestConfig, RigConfig, RigStageConfig
from handlabel.storage.calibration import CalibrationError, RigCalibration, read_calibration
from handlabel.storage.store import DatasetStore


class RigError(ValueError):
    """A rig whose videos or calibration do not fit together."""


def load_rig_calibration(rig: RigConfig) -> RigCalibration:
    calibration = read_calibration(rig.calibration, rig.unit_m)
    missing = sorted(set(rig.cameras) - set(calibration.cameras))
    if missing:
        raise RigError(f"rig {rig.name}: {rig.calibration} has no camera {', '.join(missing)} "
                       f"(it has {', '.join(calibration.cameras)})")
    return calibration


def with_rig_intrinsics(ingest: IngestConfig, rigs: RigStageConfig) -> IngestConfig:
    """The ingest config with each rig camera's K (from its calibration) for its videos: a
    rig's frames are measured with the intrinsics they were calibrated with."""
    if not rigs.rigs:
        return ingest
    per_video = dict(ingest.camera.per_video)
    for rig in rigs.rigs:
        calibration = load_rig_calibration(rig)
        for camera, pattern in rig.cameras.items():
            per_video[pattern] = calibration.cameras[camera].K.tolist()
    # the rig's globs first: the first matching glob wins
    ordered = {p: per_video[p] for p in (*_rig_patterns(rigs), *ingest.camera.per_video)}
    camera = ingest.camera.model_copy(update={"per_video": ordered})
    return ingest.model_copy(update={"camera": camera})


def _rig_patterns(rigs: RigStageConfig) -> list[str]:
    return [pattern for rig in rigs.rigs for pattern in rig.cameras.values()]


def register_rig(store: DatasetStore, rig: RigConfig, config: RigStageConfig) -> dict:
    """Check the rig against the stored videos and record it; returns its attrs. Raises
    RigError naming the members that disagree."""
    try:
        calibration = load_rig_calibration(rig)
    except CalibrationError as exc:
        raise RigError(f"rig {rig.name}: {exc}") from exc
    members = _members(store, rig)
    _check_sizes(store, rig, calibration, members)
    n_frames = _check_sync(store, rig, members, config)
    reference = rig.reference or next(iter(rig.cameras))
    if reference not in rig.cameras:
        raise RigError(f"rig {rig.name}: reference camera {reference!r} is not one of its "
                       f"cameras ({', '.join(rig.cameras)})")
    attrs = {"calibration": calibration.to_json(), "cameras": list(rig.cameras),
             "members": members, "offsets": {c: rig.offsets.get(c, 0) for c in rig.cameras},
             "n_frames": n_frames, "reference": reference}
    store.register_rig(rig.name, attrs)
    return attrs


def _members(store: DatasetStore, rig: RigConfig) -> dict[str, str]:
    """Camera name -> video id, by the camera's file-name glob."""
    table = store.manifest.table()
    members = {}
    for camera, pattern in rig.cameras.items():
        found = table[[fnmatch.fnmatch(str(name), pattern) for name in table["name"]]]
        if len(found) != 1:
            names = ", ".join(map(str, found["name"])) or "none"
            raise RigError(f"rig {rig.name}: camera {camera} ({pattern!r}) must match exactly "
                           f"one ingested video; it matches {names}")
        members[camera] = str(found["video_id"].iloc[0])
    return members


def _check_sizes(store, rig, calibration: RigCalibration, members: dict[str, str]) -> None:
    for camera, video_id in members.items():
        size = calibration.cameras[camera].size
        source = store.video(video_id).attrs.get("source_size")
        if size is not None and source is not None and tuple(size) != tuple(source):
            raise RigError(f"rig {rig.name}: camera {camera} was calibrated at {size[0]}x"
                           f"{size[1]} but its video is {source[0]}x{source[1]}")


def _check_sync(store, rig: RigConfig, members: dict[str, str],
                config: RigStageConfig) -> int:
    """The rig's frame count after the offsets; raises when the members' lengths or
    timestamps disagree beyond the tolerances."""
    times, periods = {}, {}
    for camera, video_id in members.items():
        video = store.video(video_id)
        offset = rig.offsets.get(camera, 0)
        if not 0 <= offset < video.n_frames:
            raise RigError(f"rig {rig.name}: offset {offset} of camera {camera} is outside its "
                           f"{video.n_frames} frames")
        stamps = video.timestamps()[offset:]
        times[camera] = stamps - stamps[0]
        periods[camera] = 1.0 / float(video.attrs.get("fps") or 30.0)
    lengths = {camera: len(t) for camera, t in times.items()}
    if max(lengths.values()) - min(lengths.values()) > config.frame_count_tolerance:
        listed = ", ".join(f"{c} {n}" for c, n in lengths.items())
        raise RigError(f"rig {rig.name}: its cameras have different frame counts after the "
                       f"offsets ({listed}); set the rig's offsets or "
                       "rig.frame_count_tolerance")
    n = min(lengths.values())
    reference = next(iter(times))
    for camera, stamps in times.items():
        skew = np.abs(stamps[:n] - times[reference][:n])
        tolerance = config.sync_tolerance_frames * max(periods[camera], periods[reference])
        if (skew > tolerance + 1e-9).any():
            frame = int(np.argmax(skew > tolerance + 1e-9))
            raise RigError(f"rig {rig.name}: cameras {reference} and {camera} are out of sync: "
                           f"{skew[frame] * 1000:.0f} ms apart at rig frame {frame} (tolerance "
                           f"{tolerance * 1000:.0f} ms)")
    return n


@task(name="rig-register", task_run_name="rig-register {rig.name}")
def register_rig_task(store_url: str, rig: RigConfig, config: RigStageConfig) -> dict:
    return register_rig(DatasetStore(store_url), rig, config)
