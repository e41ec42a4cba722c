"""A calibrated camera rig's calibration, read from the project's JSON/YAML or from Anipose's
``calibration.toml``, and kept in the store as JSON (no torch here).

The project's format is a mapping of camera name to its calibration; other top-level keys
are ignored except ``unit_m``::

    unit_m: 0.01            # metres per unit of the translations (optional here; else the
                            # rig's config must state it)
    cam0:
      K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
      dist: [k1, k2, p1, p2, k3]      # OpenCV's order (``dist_k1k2p1p2k3`` also read)
      R_world_to_cam: 3x3             # x_cam = R x_world + t
      t_world_to_cam: [tx, ty, tz]
      size: [width, height]           # optional: the frames K is for

Anipose's file (written by ``anipose calibrate`` / aniposelib) is read with aniposelib
itself: ``[cam_i]`` tables of name, size, matrix, distortions, rotation (Rodrigues vector)
and translation, world to camera, in the unit of the calibration board (Anipose's
convention is millimetres, but it is whatever the board's square length was given in).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

SAMPLE_DIST_KEY = "dist_k1k2p1p2k3"


class CalibrationError(ValueError):
    """A calibration file that cannot be read, or that does not fit its rig."""


@dataclass(frozen=True)
class CameraCalibration:
    """One camera: x_cam = R x_world + t (world units), pixels = K (undistorted x_cam)."""

    name: str
    K: np.ndarray  # (3, 3)
    dist: np.ndarray  # (D,) OpenCV's distortion coefficients (k1, k2, p1, p2[, k3, ...])
    R: np.ndarray  # (3, 3) world to camera
    t: np.ndarray  # (3,) world to camera, calibration units
    size: tuple[int, int] | None = None  # (width, height) K is for

    def to_dict(self) -> dict:
        return {"K": self.K.tolist(), "dist": self.dist.tolist(), "R_world_to_cam":
                self.R.tolist(), "t_world_to_cam": self.t.tolist(),
                "size": None if self.size is None else list(self.size)}


@dataclass(frozen=True)
class RigCalibration:
    """Every camera of a rig, and the unit of its translations in metres."""

    cameras: dict[str, CameraCalibration]
    unit_m: float

    def camera(self, name: str) -> CameraCalibration:
        return self.cameras[name]

    def to_json(self) -> str:
        return json.dumps({"unit_m": self.unit_m,
                           **{name: cam.to_dict() for name, cam in self.cameras.items()}})

    @classmethod
    def from_json(cls, text: str) -> RigCalibration:
        return _from_mapping(json.loads(text), "<store>", None)


def read_calibration(path: str | Path, unit_m: float | None = None) -> RigCalibration:
    """The calibration in ``path`` (.json, .yaml/.yml: the project's format; .toml: Anipose's).

    ``unit_m`` (metres per calibration unit) wins over the file's; one of them must state it,
    because the translations' unit decides the hands' size in metres.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read the calibration ({exc.strerror})") from exc
    if path.suffix.lower() == ".toml":
        return _from_anipose(path, unit_m)
    try:
        data = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{path}: not valid JSON/YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise CalibrationError(f"{path}: a calibration must be a mapping of camera names")
    return _from_mapping(data, str(path), unit_m)


def _from_mapping(data: dict, where: str, unit_m: float | None) -> RigCalibration:
    cameras = {name: _camera(name, value, where) for name, value in data.items()
               if isinstance(value, dict) and "K" in value}
    if not cameras:
        raise CalibrationError(f"{where}: no camera in the calibration (a camera is a mapping "
                               "with K, dist, R_world_to_cam and t_world_to_cam)")
    return RigCalibration(cameras, _unit(unit_m if unit_m is not None else data.get("unit_m"),
                                         where))


def _camera(name: str, value: dict, where: str) -> CameraCalibration:
    try:
        dist = value.get("dist", value.get(SAMPLE_DIST_KEY, [0.0] * 5))
        camera = CameraCalibration(
            name, np.asarray(value["K"], float), np.asarray(dist, float).ravel(),
            np.asarray(value["R_world_to_cam"], float),
            np.asarray(value["t_world_to_cam"], float).ravel(),
            None if value.get("size") is None else tuple(int(v) for v in value["size"]))
    except KeyError as exc:
        raise CalibrationError(f"{where}: camera {name!r} has no {exc.args[0]}") from exc
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: camera {name!r}: {exc}") from exc
    _check_camera(camera, where)
    return camera


def _check_camera(camera: CameraCalibration, where: str) -> None:
    shapes = {"K": (camera.K.shape, (3, 3)), "R_world_to_cam": (camera.R.shape, (3, 3)),
              "t_world_to_cam": (camera.t.shape, (3,))}
    for key, (got, want) in shapes.items():
        if got != want:
            raise CalibrationError(f"{where}: camera {camera.name!r}: {key} has shape {got}, "
                                   f"expected {want}")
    if len(camera.dist) not in (0, 4, 5, 8, 12, 14):
        raise CalibrationError(f"{where}: camera {camera.name!r}: {len(camera.dist)} distortion "
                               "coefficients (OpenCV takes 4, 5, 8, 12 or 14)")
    if not np.allclose(camera.R @ camera.R.T, np.eye(3), atol=1e-4) or np.linalg.det(camera.R) < 0:
        raise CalibrationError(f"{where}: camera {camera.name!r}: R_world_to_cam is not a "
                               "rotation")


def _unit(value, where: str) -> float:
    if value is None:
        raise CalibrationError(f"{where}: the unit of the translations is not stated: give "
                               "unit_m (metres per unit) in the file or in the rig's config")
    if float(value) <= 0:
        raise CalibrationError(f"{where}: unit_m must be positive, got {value}")
    return float(value)


def _from_anipose(path: Path, unit_m: float | None) -> RigCalibration:
    """Through aniposelib's own reader, so that its conventions (Rodrigues rotations, the
    ``extra_dist`` fisheye flag) are read as Anipose writes them."""
    import cv2
    from aniposelib.cameras import CameraGroup

    try:
        group = CameraGroup.load(str(path))
    except Exception as exc:  # toml errors and missing keys surface as many types
        raise CalibrationError(f"{path}: not an Anipose calibration ({exc})") from exc
    cameras = {}
    for cam in group.cameras:
        size = cam.get_size()
        camera = CameraCalibration(
            str(cam.get_name()), np.asarray(cam.get_camera_matrix(), float),
            np.asarray(cam.get_distortions(), float).ravel(),
            cv2.Rodrigues(np.asarray(cam.get_rotation(), float))[0],
            np.asarray(cam.get_translation(), float).ravel(),
            None if size is None else (int(size[0]), int(size[1])))
        _check_camera(camera, str(path))
        cameras[camera.name] = camera
    metadata_unit = (getattr(group, "metadata", None) or {}).get("unit_m")
    return RigCalibration(cameras, _unit(unit_m if unit_m is not None else metadata_unit,
                                         str(path)))
