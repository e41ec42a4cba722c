"""A Rerun recording per video (``export/rerun/<video>.rrd``, export format ``rerun``): the
3D labels over time in the video's camera, with the frames and the detections they came from.

Entities (the camera frame is the world: x right, y down, z forward, metres)::

    world/camera                       Pinhole: K (scaled with the frames), resolution
    world/camera/image                 the frame, JPEG
    world/camera/image/detections/<side>   the detector's 2D keypoints, coloured by confidence
    world/camera/image/labels/<side>       the labels' projected 2D skeleton
    world/hands/<side>/mesh            the reconstructed hand mesh
    world/hands/<side>/skeleton        its 21 joints as bones
    quality/<side>                     the hand's quality score

on the timelines ``frame`` (index) and ``time`` (the frame's timestamp).
"""

from __future__ import annotations

import cv2
import numpy as np

from handlabel.models.detectors.schema import BONES
from handlabel.models.tracking import SLOT_SIDES
from handlabel.models.training.setup import make_hand_model
from handlabel.storage.fs import atomic_write, filesystem, join
from handlabel.storage.store import DatasetStore

_BONE_PAIRS = np.asarray(BONES)


def write_recording(store: DatasetStore, video_id: str, folder: str, max_side: int,
                    jpeg_quality: int = 80) -> str:
    """Write the video's recording; returns its URL. Needs ``rerun-sdk`` (extra ``viewer``)."""
    try:
        import rerun as rr
    except ImportError as exc:
        raise RuntimeError("export format 'rerun' needs rerun-sdk: pip install -e '.[viewer]'"
                           ) from exc
    video, labels = store.video(video_id), store.stage(video_id, "reconstruct")
    detect = store.stage(video_id, "detect")
    height, width = video.frame_shape[:2]
    factor = min(1.0, max_side / max(height, width))
    size = (round(width * factor), round(height * factor))
    faces = make_hand_model(store.model().attrs.get("hand_model", "default")).faces
    rec = rr.RecordingStream("handlabel", recording_id=video_id)
    stream = rec.memory_recording()
    K = np.asarray(video.attrs["K"], dtype=np.float64)
    K_shown = np.diag([factor, factor, 1.0]) @ K
    rec.log("world", rr.ViewCoordinates.RDF, static=True)
    rec.log("world/camera", rr.Pinhole(image_from_camera=K_shown, resolution=list(size),
                                       camera_xyz=rr.ViewCoordinates.RDF), static=True)
    times = video.timestamps()
    for start in range(0, video.n_frames, video.chunk_frames):
        stop = min(start + video.chunk_frames, video.n_frames)
        frames = video.read(start, stop)
        found = {k: detect.read(k, start, stop) for k in ("present", "keypoints")}
        made = {k: labels.read(k, start, stop)
                for k in ("present", "vertices", "joints_3d", "keypoints_2d", "quality")}
        for offset, rgb in enumerate(frames):
            index = start + offset
            rec.set_time("frame", sequence=index)
            rec.set_time("time", duration=float(times[index]))
            shown = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if factor < 1 else rgb
            jpeg = cv2.imencode(".jpg", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])[1]
            rec.log("world/camera/image", rr.EncodedImage(contents=jpeg.tobytes(),
                                                          media_type="image/jpeg"))
            for slot, side in enumerate(SLOT_SIDES):
                _log_hand(rec, rr, side, factor, faces,
                          {k: v[offset, slot] for k, v in found.items()},
                          {k: v[offset, slot] for k, v in made.items()})
    url = join(store.url, "export", "rerun", f"{folder}.rrd")
    rec.flush()
    atomic_write(filesystem(url)[0], filesystem(url)[1], stream.drain_as_bytes())
    return url


def _log_hand(rec, rr, side: str, factor: float, faces: np.ndarray, found: dict,
              made: dict) -> None:
    """One hand of one frame; entities of an absent hand are cleared, not left stale."""
    image = f"world/camera/image/detections/{side}"
    if found["present"]:
        points, confidence = found["keypoints"][:, :2] * factor, found["keypoints"][:, 2]
        colours = np.stack([255 * (1 - confidence), 255 * confidence,
                            np.full_like(confidence, 60)], axis=1).astype(np.uint8)
        rec.log(image, rr.Points2D(points, colors=colours, radii=3.0))
    else:
        rec.log(image, rr.Clear(recursive=False))
    paths = (f"world/camera/image/labels/{side}", f"world/hands/{side}/mesh",
             f"world/hands/{side}/skeleton", f"quality/{side}")
    if not made["present"]:
        for path in paths:
            rec.log(path, rr.Clear(recursive=False))
        return
    rec.log(paths[0], rr.LineStrips2D(made["keypoints_2d"][_BONE_PAIRS] * factor,
                                      colors=[255, 200, 0], radii=1.5))
    rec.log(paths[1], rr.Mesh3D(vertex_positions=made["vertices"], triangle_indices=faces,
                                albedo_factor=[200, 160, 140]))
    rec.log(paths[2], rr.LineStrips3D(made["joints_3d"][_BONE_PAIRS], colors=[255, 200, 0]))
    rec.log(paths[3], rr.Scalars(float(made["quality"])))
