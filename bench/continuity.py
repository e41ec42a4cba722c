"""The sequence fit when a track's frames do not belong together, on synthetic sequences.

    .venv/bin/python bench/continuity.py [--seeds 100 101 ...] [--frames 90]

Each held-out synthetic sequence (``models.synthetic_motion``, the detector's measured noise;
the fit's knees and cut thresholds were chosen on seeds 200-202) is fitted as it is
(**ordered**), with its frames in a random order (**shuffled**: an image set read as a
video), and with its second half taken from another sequence (**cut**: an edited video).
Variants: the temporal terms squared as before (knees at infinity) with no cut detection;
levelled temporal terms; levelled terms and cuts from the 2D evidence (the default); no
temporal terms. Mean PA-MPJPE, MPJPE (root-relative) and 2D error of the labels over the
detected frames that got a label (a track none of whose frames has a start is left
unlabelled: "labelled %"), with the detections' own 2D error beside them.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from accuracy import measured_noise

from handlabel.config import ReconstructConfig
from handlabel.models.fit import terms
from handlabel.models.fit.observe import track_observations
from handlabel.models.fit.sequence import FitWeights
from handlabel.models.fit.track import solve_track, track_spans
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.metrics.keypoints3d import summarise_3d
from handlabel.models.synthetic_motion import synthetic_sequence
from handlabel.tasks.hand_fit import track_cuts

FIELDS = ("keypoints", "confidence", "teacher", "teacher_confidence", "joints_3d", "joints_2d")
KNEES = (terms.ROTATION_KNEE, terms.TRANSLATION_KNEE)
STILL = {"rotation_acceleration": 0.0, "translation_acceleration": 0.0}
VARIANTS = {  # name: (knees, cut detection, weight changes)
    "squared temporal terms, no cuts (before)": ((1e6, 1e6), False, {}),  # knees far out
    "levelled temporal terms": (KNEES, False, {}),
    "levelled + cuts (default)": (KNEES, True, {}),
    "no temporal terms": (KNEES, False, STILL),
}


def arranged(hand, noise, frames: int, seed: int
             ) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """The three arrangements of one sequence, with its times and K."""
    a = synthetic_sequence(hand, noise, frames, seed)
    b = synthetic_sequence(hand, noise, frames, seed + 1000)
    order = np.random.default_rng(seed).permutation(frames)
    half = frames // 2
    return {"ordered": {k: getattr(a, k) for k in FIELDS},
            "shuffled": {k: getattr(a, k)[order] for k in FIELDS},
            "cut": {k: np.concatenate([getattr(a, k)[:half], getattr(b, k)[half:]])
                    for k in FIELDS}}, a.times, a.K


def fit_spans(hand, limits, d, times, K, weights, detect_cuts, steps, lr
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Every track of the arrangement fitted: joints, projections, detected frames, cuts."""
    present = np.isfinite(d["keypoints"]).all(-1).all(-1)
    fit = ReconstructConfig().fit
    cuts = (track_cuts(np.nan_to_num(d["keypoints"]), present, times, fit) if detect_cuts
            else None)
    joints = np.full(d["joints_3d"].shape, np.nan)
    projected = np.full(d["joints_2d"].shape, np.nan)
    for start, stop in track_spans(present, times, 0.5, None, cuts):
        part = slice(start, stop)
        obs, placed = track_observations(
            d["keypoints"][part], d["confidence"][part] ** 2, d["teacher"][part],
            d["teacher_confidence"][part], present[part], times[part], K, False)
        solved = solve_track(hand, obs, placed, None, None, limits, weights, steps, lr)
        if solved is not None:  # None: no frame of the track has a start (left unlabelled)
            joints[part] = solved[0].joints.numpy()
            projected[part] = solved[0].projected.numpy()
    return joints, projected, present, 0 if cuts is None else int(cuts.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 108)))
    parser.add_argument("--frames", type=int, default=90)
    args = parser.parse_args()
    noise, hand = measured_noise(), DefaultHandModel()
    limits, fit = model_limit_frames(hand), ReconstructConfig().fit
    defaults = FitWeights(**fit.weights.model_dump())
    rows = []
    for seed in args.seeds:
        modes, times, K = arranged(hand, noise, args.frames, seed)
        for mode, d in modes.items():
            present = np.isfinite(d["keypoints"]).all(-1).all(-1)
            detected = np.linalg.norm(d["keypoints"] - d["joints_2d"], axis=-1)[present].mean()
            for name, (knees, detect_cuts, change) in VARIANTS.items():
                terms.ROTATION_KNEE, terms.TRANSLATION_KNEE = knees
                weights = FitWeights(**{**defaults.__dict__, **change})
                joints, projected, present, n_cuts = fit_spans(
                    hand, limits, d, times, K, weights, detect_cuts, fit.steps,
                    fit.learning_rate)
                labelled = present & np.isfinite(joints).all(-1).all(-1)
                scores = summarise_3d(joints[labelled], d["joints_3d"][labelled])
                rows.append({"frames": mode, "fit": name, "cuts": n_cuts,
                             "labelled %": 100 * labelled.sum() / present.sum(),
                             "PA-MPJPE mm": scores["pa_mpjpe_mm"],
                             "MPJPE mm": scores["mpjpe_mm"],
                             "labels 2D px": np.linalg.norm(projected - d["joints_2d"],
                                                            axis=-1)[labelled].mean(),
                             "detections 2D px": detected})
        terms.ROTATION_KNEE, terms.TRANSLATION_KNEE = KNEES
        print(f"seed {seed} done", flush=True)
    table = pd.DataFrame(rows).groupby(["frames", "fit"], sort=False).mean()
    print(f"{len(args.seeds)} synthetic sequences (seeds {args.seeds[0]}-{args.seeds[-1]}) of "
          f"{args.frames} frames; torch threads {torch.get_num_threads()}; "
          "command: .venv/bin/python bench/continuity.py")
    print(table.to_markdown(floatfmt=".2f"))


if __name__ == "__main__":
    main()
