"""A 3D check without labels on the calibrated stereo pair (``../shared/data/stereo``).

    .venv/bin/python bench/stereo.py [--store bench-stereo-store]

Each camera's video goes through ``handlabel run`` alone (one store, both videos, the
default config with each camera's K); each camera's 3D joints are then carried into the
other camera with the calibration and projected there, and compared with that camera's own
detections: the held-out-view error in pixels, per source camera, for

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

from handlabel.config import CameraConfig, HandlabelConfig, IngestConfig
from handlabel.models.fit.placement import place_world

STEREO = Path("../shared/data/stereo")
RIGHT = 1  # the right-hand slot: the pair shows one right hand


def calibration() -> dict:
    raw = json.loads((STEREO / "calibration.json").read_text())
    return {"K0": np.array(raw["cam0"]["K"]), "K1": np.array(raw["cam1"]["K"]),
            "R01": np.array(raw["R_cam0_to_cam1"]), "t01": np.array(raw["t_cam0_to_cam1"])}


def run_store(store: str) -> None:
    from handlabel.flows.pipeline import run_pipeline

    cal = calibration()
    camera = CameraConfig(per_video={"cam0.mp4": cal["K0"].tolist(),
                                     "cam1.mp4": cal["K1"].tolist()})
    config = HandlabelConfig(ingest=IngestConfig(camera=camera))
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
          f"median over {frames} frames of triangulated / MediaPipe metric palm length")
    R10, t10 = cal["R01"].T, -cal["R01"].T @ cal["t01"]
    moves = {0: (cal["R01"], cal["t01"], cal["K0"], cal["K1"]),
             1: (R10, t10, cal["K1"], cal["K0"])}
    rows = []
    for source, (R, t, K_src, K_dst) in moves.items():
        a, b = cams[source], cams[1 - source]
        both = np.flatnonzero(a["present"] & b["present"] & ~a["interpolated"])
        errors = {"teacher (MediaPipe 3D placed by PnP)": [], "network alone": [],
                  "labels (network + fit)": []}
        for frame in both:
            placed = place_world(a["world"][frame].astype(float),
                                 a["keypoints"][frame].astype(float), K_src)
            if placed is None:
                continue
            detected = b["keypoints"][frame]
            for name, joints in zip(errors, (placed, a["network"][frame], a["labels"][frame]),
                                    strict=True):
                errors[name].append(held_out_error(joints, unit, R, t, K_dst, detected))
        for name, values in errors.items():
            rows.append({"from": f"cam{source} -> cam{1 - source}", "method": name,
                         "frames": len(values), "mean px": np.mean(values),
                         "median px": np.median(values)})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".1f"))
    for source in ("cam0 -> cam1", "cam1 -> cam0"):
        part = table[table["from"] == source].set_index("method")
        ratio = part["mean px"].iloc[2] / part["mean px"].iloc[0]
        print(f"{source}: labels / teacher = {ratio:.2f} (mean), "
              f"{part['median px'].iloc[2] / part['median px'].iloc[0]:.2f} (median)")


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
