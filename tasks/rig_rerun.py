"""A Rerun recording per calibrated rig (``export/rerun/rig-<name>.rrd``, export format
``rerun``): every camera of the rig in one world frame, with its frames, and the rig's hands
in 3D.

Entities (the calibration's world frame, metres)::

    world/<camera>                     Transform3D (world to camera: R, t) and Pinhole (K)
    world/<camera>/image               the camera's frame, JPEG
    world/<camera>/image/labels/<side> the rig labels projected into it (lens distortion on)
    world/hands/<side>/mesh            the rig's hand mesh, fitted over every view
    world/hands/<side>/skeleton        its joints as bones
    world/hands/<side>/triangulated    the detections triangulated (joints of confidence > 0)

on the timelines ``frame`` (the rig frame) and ``time`` (the reference camera's timestamp).
"""

from __future__ import annotations

import cv2
import numpy as np

from handlabel.models.detectors.schema import BONES
from handlabel.models.tracking import SLOT_SIDES
from handlabel.models.training.setup import make_hand_model
from handlabel.storage.fs import atomic_write, filesystem, join
from handlabel.storage.store import DatasetStore

from .rig_reconstruct import RigMembers

_BONE_PAIRS = np.asarray(BONES)


def write_rig_recording(store: DatasetStore, name: str, max_side: int,
                        jpeg_quality: int = 80) -> str:
    """Write the rig's recording; returns its URL. Needs ``rerun-sdk`` (extra ``viewer``)."""
    try:
        import rerun as rr
    except ImportError as exc:
        raise RuntimeError("export format 'rerun' needs rerun-sdk: pip install -e '.[viewer]'"
                           ) from exc
    rig = RigMembers(store, name)
    labels, tri = store.rig_stage(name, "labels"), store.rig_stage(name, "triangulate")
    faces = make_hand_model(store.model().attrs.get("hand_model", "default")).faces
    rec = rr.RecordingStream("handlabel", recording_id=f"rig-{name}")
    stream = rec.memory_recording()
    factors = [_log_camera(rec, rr, rig, camera, max_side) for camera in range(len(rig.cameras))]
    made = {k: labels.read(k) for k in ("present", "vertices_world", "joints_world",
                                        "keypoints_2d")}
    found = {k: tri.read(k) for k in ("joints", "confidence")}
    times = rig.times()
    for start in range(0, rig.n_frames, 64):
        stop = min(start + 64, rig.n_frames)
        frames = [_frames(store, rig, camera, start, stop) for camera in range(len(rig.cameras))]
        for offset in range(stop - start):
            frame = start + offset
            rec.set_time("frame", sequence=frame)
            rec.set_time("time", duration=float(times[frame]))
            for camera, name_ in enumerate(rig.cameras):
                shown = frames[camera][offset]
                if factors[camera] < 1:
                    shown = cv2.resize(shown, None, fx=factors[camera], fy=factors[camera],
                                       interpolation=cv2.INTER_AREA)
                jpeg = cv2.imencode(".jpg", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])[1]
                rec.log(f"world/{name_}/image", rr.EncodedImage(contents=jpeg.tobytes(),
                                                                media_type="image/jpeg"))
            for hand, side in enumerate(SLOT_SIDES):
                _log_hand(rec, rr, rig, side, faces, factors,
                          {k: v[frame, hand] for k, v in made.items()},
                          {k: v[frame, hand] for k, v in found.items()})
    url = join(store.url, "export", "rerun", f"rig-{name}.rrd")
    rec.flush()
    atomic_write(filesystem(url)[0], filesystem(url)[1], stream.drain_as_bytes())
    return url


def _log_camera(rec, rr, rig: RigMembers, camera: int, max_side: int) -> float:
    """The camera's pose and intrinsics (static); returns the frames' display scale."""
    name = rig.cameras[camera]
    video = rig.store.video(rig.members[name])
    height, width = video.frame_shape[:2]
    factor = min(1.0, max_side / max(height, width))
    geometry = rig.geometry
    rec.log(f"world/{name}", rr.Transform3D(translation=geometry.t[camera],
                                            mat3x3=geometry.R[camera],
                                            relation=rr.TransformRelation.ChildFromParent),
            static=True)
    K = np.diag([factor, factor, 1.0]) @ geometry.K[camera]
    rec.log(f"world/{name}", rr.Pinhole(image_from_camera=K, resolution=[round(width * factor),
                                                                          round(height * factor)],
                                        camera_xyz=rr.ViewCoordinates.RDF), static=True)
    return factor


def _frames(store, rig: RigMembers, camera: int, start: int, stop: int) -> np.ndarray:
    name = rig.cameras[camera]
    offset = rig.offsets[name]
    return store.video(rig.members[name]).read(start + offset, stop + offset)


def _log_hand(rec, rr, rig, side: str, faces, factors, made: dict, found: dict) -> None:
    """One rig hand of one frame; an absent hand's entities are cleared, not left stale."""
    paths = [f"world/hands/{side}/mesh", f"world/hands/{side}/skeleton",
             *(f"world/{name}/image/labels/{side}" for name in rig.cameras)]
    if not made["present"]:
        for path in paths:
            rec.log(path, rr.Clear(recursive=False))
    else:
        rec.log(paths[0], rr.Mesh3D(vertex_positions=made["vertices_world"],
                                    triangle_indices=faces, albedo_factor=[200, 160, 140]))
        rec.log(paths[1], rr.LineStrips3D(made["joints_world"][_BONE_PAIRS],
                                          colors=[255, 200, 0]))
        for camera, path in enumerate(paths[2:]):
            rec.log(path, rr.LineStrips2D(made["keypoints_2d"][camera][_BONE_PAIRS]
                                          * factors[camera], colors=[255, 200, 0], radii=1.5))
    seen = found["confidence"] > 0
    path = f"world/hands/{side}/triangulated"
    if seen.any():
        rec.log(path, rr.Points3D(found["joints"][seen], colors=[0, 200, 255], radii=0.003))
    else:
        rec.log(path, rr.Clear(recursive=False))
