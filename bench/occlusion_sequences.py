"""Objects passing over moving synthetic hands: the labels against exact 3D.

    .venv/bin/python bench/occlusion_sequences.py [--sequences 8] [--frames 150]
                                                  [--first-seed 100] [--variants default ...]

``bench/occlusion.py`` runs the real detector on real textures, but its clips are still
images drifting a tenth of a hand size, with 3D truth on 9 of them. Here the hands move
(``models/synthetic_motion.py``: people whose rest joints sit 8 mm from the model's, the
detector's measured 2D error profile and a simulated teacher 3D), a disc crosses the hand
every 1.5 s in 0.2-1 s, and the detector's answer to the covered joints is the model of
``models/synthetic_occlusion.py`` (misses, whole-hand and covered-joint shifts, the colour
test's flags, sized from what ``bench/occlusion.py`` measured with MediaPipe). Each variant
is fitted as ``reconstruct`` fits a slot: the weight stage's weights with the colour flags,
tracks cut at gaps over ``fit.max_gap_s``, covered detections left to the track, the
gaps carried by ``fit.carry_unseen`` (no network: these sequences have no images). The
simulated teacher's 3D is as good on covered frames as on clean ones, which the real
detector's is not (``bench/occlusion.py``, ``fit.covered_teacher``).

Per frame class (clean: no joint covered; occluded: any; heavy: at least 30%): the share of
frames with a hand within 0.75 hand sizes of the truth, and the error in 2D (px, 1280x720),
3D (MPJPE, mm, root-relative as in ``bench/accuracy.py``) and PA-MPJPE (mm), for the
detector (its 2D; its 3D placed by PnP, as the fit's start) and each variant's labels, over
the frames each has. Seeds 100.. are the held-out seeds of ``bench/accuracy.py sequences``;
nothing here was tuned on them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from handlabel.config import FitConfig, HandlabelConfig
from handlabel.models.fit.covered import covered_detections
from handlabel.models.fit.sequence import FitWeights
from handlabel.models.fit.track import track_spans
from handlabel.models.fit.window import WindowArrays, solve_windows, window_evidence, without_frames
from handlabel.models.hand.default import DefaultHandModel
from handlabel.models.hand.limits import model_limit_frames
from handlabel.models.keypoints import hand_sizes
from handlabel.models.metrics.keypoints3d import procrustes_errors, root_relative_errors
from handlabel.models.synthetic_motion import synthetic_sequence
from handlabel.models.synthetic_occlusion import occluded_detections, passes
from handlabel.models.weights import WeightParams, supervision_weights
from handlabel.tasks.hand_fit import track_cuts

FPS = 30.0
HEAVY = 0.3
FOUND = 0.75  # hand sizes: the joints' centre this close to the truth's counts as found
VARIANTS: dict[str, dict] = {  # name: changes to reconstruct.fit
    "default": {},
    "covered detections' 3D kept": {"covered_teacher": True},
    "gaps to the temporal terms": {"carry_unseen": "none"},
    "no hysteresis, gaps to the temporal terms (before)":
        {"covered_edge_share": None, "carry_unseen": "none"},
    "covered detections fitted, gaps to the temporal terms":
        {"covered_share": None, "carry_unseen": "none"},
    "cubic bridge": {"carry_unseen": "cubic"},
    "every cut stands (before)": {"cut_settle_s": 0.0},
}


def fit_slot(hand, limit_frames, arrays: WindowArrays, unlike: np.ndarray, fit: FitConfig
             ) -> tuple[np.ndarray, np.ndarray]:
    """(T, 21, 3) joints and (T, 21, 2) px of the labels, NaN where no track reaches."""
    frames = len(arrays.present)
    joints, projected = np.full((frames, 21, 3), np.nan), np.full((frames, 21, 2), np.nan)
    spans = track_spans(arrays.present, arrays.times, fit.max_gap_s, None,
                        track_cuts(arrays.keypoints, arrays.present, arrays.times, fit))
    windows = []
    for start, stop in spans:
        part = WindowArrays(**{k: (v if k == "K" or v is None else v[start:stop])
                               for k, v in arrays.__dict__.items() if k != "network"})
        if fit.covered_share is not None:
            hidden = covered_detections(part.present, unlike[start:stop].mean(-1), part.times,
                                        fit.covered_share, fit.covered_edge_share,
                                        fit.covered_edge_s)
            part = without_frames(part, hidden, keep_teacher=fit.covered_teacher)
        windows.append(window_evidence(part))
    weights = FitWeights(**fit.weights.model_dump())
    solved = solve_windows(hand, windows, limit_frames, weights, fit.steps, fit.learning_rate,
                           None, fit.carry_unseen)
    for (start, stop), result in zip(spans, solved, strict=True):
        if result is not None:
            joints[start:stop] = result[0].joints.numpy()
            projected[start:stop] = result[0].projected.numpy()
    return joints, projected


def frame_rows(method: str, seed: int, joints, projected, truth_3d, truth_2d, share
               ) -> list[dict]:
    size = hand_sizes(truth_2d)
    have = np.isfinite(projected).all(-1).all(-1)
    centre_error = np.linalg.norm(np.nan_to_num(projected.mean(1) - truth_2d.mean(1), nan=1e9),
                                  axis=-1)
    found = have & (centre_error <= FOUND * size)
    px = np.linalg.norm(projected - truth_2d, axis=-1).mean(-1)
    mm, pa = np.full(len(joints), np.nan), np.full(len(joints), np.nan)
    ok = have & np.isfinite(joints).all(-1).all(-1)
    if ok.any():
        mm[ok] = root_relative_errors(joints[ok], truth_3d[ok]).mean(-1)
        pa[ok] = procrustes_errors(joints[ok], truth_3d[ok]).mean(-1)
    return [{"method": method, "seed": seed, "share": share[t], "found": found[t],
             "px": px[t] if found[t] else np.nan, "mm": mm[t] if found[t] else np.nan,
             "pa_mm": pa[t] if found[t] else np.nan} for t in range(len(joints))]


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    classes = {"clean": rows["share"] == 0, "occluded": rows["share"] > 0,
               f"heavy (>= {HEAVY:.0%})": rows["share"] >= HEAVY}
    out = []
    for name, mask in classes.items():
        for method, part in rows[mask].groupby("method", sort=False):
            out.append({"frames": name, "method": method, "n": len(part),
                        "present": part["found"].mean(), "px": part["px"].mean(),
                        "MPJPE mm": part["mm"].mean(), "PA mm": part["pa_mm"].mean()})
    return pd.DataFrame(out).set_index(["frames", "method"])


def run_sequence(seed: int, frames: int, noise, hand, limit_frames, config: HandlabelConfig,
                 variants: list[str]) -> list[dict]:
    from handlabel.models.fit.observe import track_observations

    seq = synthetic_sequence(hand, noise, frames, seed, skeleton_m=0.008)
    rng = np.random.default_rng(10_000 + seed)
    covered = passes(seq.joints_2d, FPS, rng)
    det = occluded_detections(seq.keypoints, seq.confidence, seq.joints_2d, covered, rng)
    present = det.present
    teacher = np.where(present[:, None, None], seq.teacher, np.nan)
    teacher_conf = np.where(present[:, None], seq.teacher_confidence, 0.0)
    params = WeightParams(**config.weight.model_dump())
    arrays = WindowArrays(
        keypoints=det.keypoints,
        weights=supervision_weights(det.keypoints, det.confidence, present, params,
                                    unlike=det.unlike)["joint"],
        world=teacher, world_confidence=teacher_conf, present=present,
        mirrored=np.zeros(frames, bool), times=seq.times, K=seq.K.astype(np.float32))
    share = covered.mean(-1)
    _, placed = track_observations(det.keypoints, arrays.weights, teacher, teacher_conf,
                                   present, seq.times, seq.K, False)
    rows = frame_rows("detector (2D; 3D placed by PnP)", seed, placed.numpy().astype(float),
                      det.keypoints, seq.joints_3d, seq.joints_2d, share)
    for variant in variants:
        fit = FitConfig.model_validate({**config.reconstruct.fit.model_dump(),
                                        **VARIANTS[variant]})
        joints, projected = fit_slot(hand, limit_frames, arrays, det.unlike, fit)
        rows += frame_rows(variant, seed, joints, projected, seq.joints_3d, seq.joints_2d,
                           share)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    from accuracy import measured_noise

    torch.manual_seed(0)
    noise = measured_noise()
    hand = DefaultHandModel()
    limit_frames = model_limit_frames(hand)
    config = HandlabelConfig()
    rows, started = [], time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.sequences):
        rows += run_sequence(seed, args.frames, noise, hand, limit_frames, config, args.variants)
        print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{args.sequences} sequences (seeds {args.first_seed}-"
          f"{args.first_seed + args.sequences - 1}) of {args.frames} frames at {FPS:g} fps; "
          f"present: within {FOUND} hand sizes of the truth; errors over each one's present "
          f"frames; {time.perf_counter() - started:.0f} s\n")
    print(summary(table).to_markdown(floatfmt=".3g"))
    print("\n.venv/bin/python bench/occlusion_sequences.py --sequences "
          f"{args.sequences} --frames {args.frames} --first-seed {args.first_seed} "
          f"--variants {' '.join(repr(v) for v in args.variants)}")


if __name__ == "__main__":
    main()
