"""A 3D check without labels on the calibrated stereo pair (``../shared/data/stereo``).

    .venv/bin/python bench/stereo.py [--store bench-stereo-store] [--reuse]

Both videos go through ``handlabel run`` with ``configs/stereo-rig.yaml`` (the default
config plus the pair as a rig): each camera's video gets its own monocular labels, and the
rig stage triangulates and fits the pair. Printed:

1. the triangulation (the Anipose-style baseline): reprojection residuals per view, ours
   (confidence-weighted DLT on undistorted detections) and aniposelib's own
   ``CameraGroup.triangulate``, and how far apart their joints are;
2. the rig labels (one fit over both views): reprojection error per view;
3. leave-one-view-out for the monocular methods: each camera's 3D joints carried into the
   other camera with the calibration and projected there, compared with that camera's own
   detections (px), and with the triangulated joints (mm), per source camera, for

- the teacher: MediaPipe's world landmarks placed in the camera by PnP with K;
- the network alone (reconstruct's network step);
- the labels (network + sequence fit).

The calibration does not state its translation unit. It is measured from the data: both
cameras' detections of the same frames, triangulated with the calibration, give the hand in
calibration units; MediaPipe's metric world landmarks give the same hand in metres; the
median ratio of the wrist-to-middle-MCP lengths is the unit. Lens distortion is left out
everywhere (the pipeline has no distortion model), the same way for every method.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from handlabel.config import load_config
from handlabel.models.fit.placement import place_world

STEREO = Path("../shared/data/stereo")
RIGHT = 1  # the right-hand slot: the pair shows one right hand
RIG_CONFIG = "configs/stereo-rig.yaml"


def calibration() -> dict:
    raw = json.loads((STEREO / "calibration.json").read_text())
    return {"K0": np.array(raw["cam0"]["K"]), "K1": np.array(raw["cam1"]["K"]),
            "R01": np.array(raw["R_cam0_to_cam1"]), "t01": np.array(raw["t_cam0_to_cam1"])}


def run_store(store: str) -> None:
    from handlabel.flows.pipeline import run_pipeline

    config = load_config(RIG_CONFIG)
    state = run_pipeline([str(STEREO / "cam0.mp4"), str(STEREO / "cam1.mp4")], store, config)
    print(f"pipeline: {state.type.value} {state.message}")


def camera_arrays(store, name: str) -> dict:
    row = next(r for _, r in store.manifest.table().iterrows() if r["name"] == name)
    vid = row["video_id"]
    detect, network = store.stage(vid, "detect"), store.stage(vid, "network")
    labels = store.stage(vid, "reconstruct")
    return {"present": detect.read("present")[:, RIGHT],
            "keypoints": detect.read("keypoints")[:, RIGHT, :, :2],
            "world": detect.read("world")[:, RIGHT],
            "network": network.read("joints_3d")[:, RIGHT],
            "labels": labels.read("joints_3d")[:, RIGHT],
            "interpolated": labels.read("interpolated")[:, RIGHT]}


def triangulated_unit(a: dict, b: dict, cal: dict) -> tuple[float, int]:
    """Calibration units per metre, and the number of frames it is the median over."""
    P0 = cal["K0"] @ np.hstack([np.eye(3), np.zeros((3, 1))])
    P1 = cal["K1"] @ np.hstack([cal["R01"], cal["t01"][:, None]])
    both = np.flatnonzero(a["present"] & b["present"])
    ratios = []
    for t in both:
        points = cv2.triangulatePoints(P0, P1, a["keypoints"][t].T, b["keypoints"][t].T)
        joints = (points[:3] / points[3]).T
        units = np.linalg.norm(joints[9] - joints[0])
        metres = np.linalg.norm(a["world"][t, 9] - a["world"][t, 0])
        ratios.append(units / metres)
    return float(np.median(ratios)), len(both)


def held_out_error(joints_m: np.ndarray, unit: float, R: np.ndarray, t: np.ndarray,
                   K: np.ndarray, detected: np.ndarray) -> float:
    """Mean px distance of (21, 3) camera-a joints (metres) projected into camera b, to b's
    detections."""
    other = (joints_m * unit) @ R.T + t
    pixels = other[:, :2] / other[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
    return float(np.linalg.norm(pixels - detected, axis=-1).mean())


def evaluate(store_url: str) -> None:
    from handlabel.storage.store import DatasetStore

    store = DatasetStore(store_url, create=False)
    cal = calibration()
    cams = {0: camera_arrays(store, "cam0.mp4"), 1: camera_arrays(store, "cam1.mp4")}
    unit, frames = triangulated_unit(cams[0], cams[1], cal)
    print(f"calibration unit: {unit:.2f} units per metre (1 unit = {100 / unit:.2f} cm), the "
          f"median over {frames} frames of triangulated / MediaPipe metric palm length\n")
    rig = rig_arrays(store)
    print_triangulation(store, rig)
    print_rig_labels(rig)
    print_held_out(cams, cal, unit, rig)


def rig_arrays(store) -> dict:
    from handlabel.tasks.rig_reconstruct import RigMembers

    members = RigMembers(store, "desk")
    tri, labels = store.rig_stage("desk", "triangulate"), store.rig_stage("desk", "labels")
    return {"members": members, **{f"tri_{k}": tri.read(k)[:, RIGHT] for k in
                                   ("present", "joints", "confidence", "residual_px",
                                    "view_slot")},
            **{k: labels.read(k)[:, RIGHT] for k in ("present", "interpolated",
                                                       "reprojection_px", "joints_world")}}


def print_triangulation(store, rig: dict) -> None:
    """Residuals per view of ours and of aniposelib's triangulation of the same detections."""
    from aniposelib.cameras import Camera, CameraGroup

    members = rig["members"]
    geometry = members.geometry
    both = np.flatnonzero(rig["tri_present"] & (rig["tri_view_slot"] >= 0).all(-1))
    pixels = np.stack([members.read(c, "detect", "keypoints")[both, RIGHT, :, :2]
                       for c in range(2)])
    group = CameraGroup([Camera(matrix=geometry.K[c], dist=geometry.dist[c],
                                rvec=cv2.Rodrigues(geometry.R[c])[0].ravel(),
                                tvec=geometry.t[c]) for c in range(2)])
    theirs = group.triangulate(pixels.reshape(2, -1, 2).astype(float), undistort=True,
                               progress=False).reshape(len(both), 21, 3)
    rows = []
    for c in range(2):
        undistorted = geometry.undistort(pixels[c], c)
        projected = geometry.project(geometry.to_camera(theirs, c), c, distort=False)
        their_px = np.linalg.norm(projected - undistorted, axis=-1)
        ours_px = rig["tri_residual_px"][both, c]
        rows.append({"view": f"cam{c}", "frames": len(both),
                     "ours: median px": np.nanmedian(ours_px), "ours: mean px": np.nanmean(ours_px),
                     "aniposelib: median px": np.nanmedian(their_px),
                     "aniposelib: mean px": np.nanmean(their_px)})
    gap = np.linalg.norm(theirs - rig["tri_joints"][both], axis=-1) * 1000
    print("1. triangulation residuals (undistorted px), confidence-weighted DLT vs aniposelib's")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))
    print(f"ours vs aniposelib's joints: median {np.nanmedian(gap):.1f} mm, mean "
          f"{np.nanmean(gap):.1f} mm; mean triangulated confidence "
          f"{rig['tri_confidence'][both].mean():.2f}\n")


def print_rig_labels(rig: dict) -> None:
    detected = rig["present"] & ~rig["interpolated"]
    rows = [{"view": f"cam{c}", "frames": int(detected.sum()),
             "median px": np.nanmedian(rig["reprojection_px"][detected, c]),
             "mean px": np.nanmean(rig["reprojection_px"][detected, c])} for c in range(2)]
    trusted = detected & rig["tri_present"] & (rig["tri_confidence"].mean(-1) > 0.5)
    gaps = [mm_from_triangulated(rig["joints_world"][f], rig["tri_joints"][f])
            for f in np.flatnonzero(trusted)]
    print("2. rig labels (one fit over both views): weighted reprojection error per view")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))
    print(f"rig labels vs the triangulated joints ({len(gaps)} frames): "
          f"{np.mean([g[0] for g in gaps]):.1f} mm, root-relative "
          f"{np.mean([g[1] for g in gaps]):.1f} mm\n")


def mm_from_triangulated(joints_m: np.ndarray, triangulated_m: np.ndarray) -> tuple[float, float]:
    """(absolute, root-relative) mean joint distance in mm of (21, 3) camera-frame joints."""
    absolute = np.nanmean(np.linalg.norm(joints_m - triangulated_m, axis=-1)) * 1000
    centred = (joints_m - joints_m[:1]) - (triangulated_m - triangulated_m[:1])
    relative = np.nanmean(np.linalg.norm(centred, axis=-1)) * 1000
    return float(absolute), float(relative)


def print_held_out(cams: dict, cal: dict, unit: float, rig: dict) -> None:
    geometry = rig["members"].geometry
    R10, t10 = cal["R01"].T, -cal["R01"].T @ cal["t01"]
    moves = {0: (cal["R01"], cal["t01"], cal["K0"], cal["K1"]),
             1: (R10, t10, cal["K1"], cal["K0"])}
    trusted = rig["tri_present"] & (rig["tri_confidence"].mean(-1) > 0.5)
    rows = []
    for source, (R, t, K_src, K_dst) in moves.items():
        a, b = cams[source], cams[1 - source]
        both = np.flatnonzero(a["present"] & b["present"] & ~a["interpolated"])
        methods = ("teacher (MediaPipe 3D placed by PnP)", "network alone",
                   "labels (network + fit)")
        errors = {name: {"px": [], "abs": [], "rel": []} for name in methods}
        for frame in both:
            placed = place_world(a["world"][frame].astype(float),
                                 a["keypoints"][frame].astype(float), K_src)
            if placed is None:
                continue
            detected = b["keypoints"][frame]
            reference = geometry.to_camera(rig["tri_joints"][frame].astype(float), source)
            for name, joints in zip(methods, (placed, a["network"][frame], a["labels"][frame]),
                                    strict=True):
                errors[name]["px"].append(held_out_error(joints, unit, R, t, K_dst, detected))
                if trusted[frame]:
                    absolute, relative = mm_from_triangulated(joints, reference)
                    errors[name]["abs"].append(absolute)
                    errors[name]["rel"].append(relative)
        for name, values in errors.items():
            rows.append({"from": f"cam{source} -> cam{1 - source}", "method": name,
                         "frames": len(values["px"]), "held-out mean px": np.mean(values["px"]),
                         "held-out median px": np.median(values["px"]),
                         "vs triangulated: frames": len(values["abs"]),
                         "mm": np.mean(values["abs"]), "root-relative mm": np.mean(values["rel"])})
    print("3. leave-one-view-out: monocular 3D carried into the other camera (px against its "
          "detections) and compared with the triangulated joints (mm; frames whose mean "
          "triangulated confidence > 0.5)")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".1f"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default="bench-stereo-store")
    parser.add_argument("--reuse", action="store_true", help="evaluate an existing store")
    args = parser.parse_args()
    if not args.reuse:
        run_store(args.store)
    evaluate(args.store)


if __name__ == "__main__":
    main()
