"""The labels where an object passes over the hand, against the detector, on real texture.

    .venv/bin/python bench/occlusion.py [--samples 53] [--frames 60] [--video right_hand_office.mp4]
                                        [--variants default ...] [--store DIR]

Two sets, both run through the real stages in one process (``bench/inprocess.py``: ingest,
detect, weight, train, reconstruct; the default config, training cut to one epoch over 64
hands, since the labels do not depend on the network: issue 26):

- **labelled clips**: each image of ``../shared/data/labelled/`` becomes a 2 s clip (30 fps):
  the image drifts slowly (a smooth pan of a tenth of the hand's size, so the truth moves
  with it and stays exact), and one occluder passes over the hand in 0.2-1 s. 2D truth on
  every frame; 3D truth on the 9 samples that carry it (PA-MPJPE, mm).
- **a sample video** (``--video``; default the office clip): occluders pass over the hand
  every 1.5 s. This video has no truth: the reference is the detector's own hand on the
  clean video, so its rows measure presence, and how far occlusion moves detections and
  labels from what the clean video gave (px), not error.

Occluders are cut from frames of the two-hand clips (a mug, a cup, foliage, wood, knit:
``OCCLUDERS``), never flat boxes (``models/occluders.py``). A frame is **clean** when no
visible joint is covered, **occluded** when any is, **heavy** when at least 30% are.

Per set and frame class: the detector's found rate and error, the labels' presence and
error, over the frames each has (a hand counts as found when its joints' centre lies within
0.75 hand sizes of the truth's; the same rule for both), then on the frames both have.
Then, per joint of the detected labelled frames, how well the labels' ``visible`` estimate
tells the covered joints (its threshold was chosen on the even-numbered clips), and per band
of the labels' quality score, their error: whether the ``low_quality`` flag is honest.
``--variants`` names the configurations compared (ablations, ``VARIANTS``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from inprocess import label_videos

from handlabel.config import HandlabelConfig, TrainConfig
from handlabel.models.metrics.keypoints2d import hand_size
from handlabel.models.metrics.keypoints3d import procrustes_errors
from handlabel.models.occluders import Occluder, composite, covered, cut_occluder, plan_pass
from handlabel.storage.labelled import read_labelled_manifest
from handlabel.storage.store import DatasetStore
from handlabel.storage.video import iter_frames
from handlabel.storage.video_writer import write_video

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FPS = 30.0
HEAVY = 0.3
# (name, video, frame, box (x0, y0, x1, y1) in the 1280x720 frame, outline): chosen by eye,
# away from every hand in that frame
OCCLUDERS = (
    ("mug", "two_hands_coffee.mp4", 100, (744, 356, 904, 544), "blue"),
    ("cup", "two_hands_cups.mp4", 0, (830, 290, 1000, 544), "red"),
    ("foliage", "two_hands_cups.mp4", 100, (0, 0, 320, 200), "ellipse"),
    ("wood", "two_hands_coffee.mp4", 100, (0, 200, 180, 440), "ellipse"),
    ("knit", "two_hands_cups.mp4", 0, (520, 40, 880, 330), "ellipse"),
)
TINY_TRAINING = TrainConfig(epochs=1, max_samples=64)
VARIANTS: dict[str, dict] = {  # name: config changes from the defaults
    "default": {},
    "teacher 3D weight 0.3 (before)": {"reconstruct": {"fit": {"weights": {"teacher_3d": 0.3}}}},
    "gaps up to 0.5 s (before)": {"reconstruct": {"fit": {"max_gap_s": 0.5}}},
    "no search (before)": {"detect": {"search_frames": 0}},
    "no identity step (before)": {"detect": {"identity": False}},
    "no colour evidence (before)": {"weight": {"colour_outlier": None}},
    "covered detections fitted (before)": {"reconstruct": {"fit": {"covered_share": None}}},
    "gaps to the temporal terms": {"reconstruct": {"fit": {"carry_unseen": "none"}}},
    "covered detections' 3D kept": {"reconstruct": {"fit": {"covered_teacher": True}}},
    "no hysteresis, gaps to the temporal terms (before)":
        {"reconstruct": {"fit": {"covered_edge_share": None, "carry_unseen": "none"}}},
    "every cut stands (before)": {"reconstruct": {"fit": {"cut_settle_s": 0.0}}},
}
FINDABLE = 0.5  # a clip counts when the detector finds its hand on this share of clean frames


@dataclass
class Clip:
    """One benchmark video and its reference per frame."""

    name: str
    path: Path
    truth: np.ndarray  # (T, 21, 2) px
    visible: np.ndarray  # (T, 21) bool
    covered: np.ndarray  # (T, 21) bool
    truth_3d: np.ndarray | None  # (21, 3) metres (still images: one pose)
    exact: bool  # truth (True) or the clean video's detections (False)


def load_occluders() -> list[Occluder]:
    frames = {}
    for _, video, index, _, _ in OCCLUDERS:
        if (video, index) not in frames:
            for i, (rgb, _) in enumerate(iter_frames(str(DATA / "videos" / video))):
                if i == index:
                    frames[video, index] = rgb
                    break
    return [cut_occluder(name, frames[video, index], box, outline)
            for name, video, index, box, outline in OCCLUDERS]


def truth_box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(0), points.max(0)])


def drift(t: np.ndarray, amplitude: float, phase: np.ndarray) -> np.ndarray:
    """(T, 2) a smooth pan: two sines of periods 1.7 s and 2.3 s."""
    return amplitude * np.stack([np.sin(2 * np.pi * t / 1.7 + phase[0]),
                                 np.sin(2 * np.pi * t / 2.3 + phase[1])], axis=1)


def still_clip(sample, occluders: list[Occluder], rng: np.random.Generator, n: int,
               folder: Path) -> Clip:
    """A labelled image as a drifting clip with one occluder pass over its hand."""
    import cv2

    image = sample.load_rgb()
    image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
    points, visible = sample.keypoints.astype(float), sample.visible
    size = hand_size(points, visible)
    shifts = drift(np.arange(n) / FPS, 0.1 * size, rng.uniform(0, 2 * np.pi, 2))
    span = int(rng.integers(round(0.2 * FPS), round(1.0 * FPS) + 1))
    first = max(1, (n - span) // 2 + int(rng.integers(-5, 6)))
    passing = plan_pass(rng, occluders[int(rng.integers(len(occluders)))],
                        truth_box(points[visible]), first, span)
    frames, truth, cover = [], [], []
    for t in range(n):
        move = np.float32([[1, 0, shifts[t, 0]], [0, 1, shifts[t, 1]]])
        moved = cv2.warpAffine(image, move, image.shape[1::-1], flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        centre = passing.centre(t)
        centre = None if centre is None else centre + shifts[t]
        frames.append(moved if centre is None else composite(moved, passing.occluder, centre))
        truth.append(points + shifts[t])
        cover.append(covered(truth[-1], passing.occluder, centre) & visible)
    path = folder / f"{sample.id}.mp4"
    write_video(str(path), frames, FPS)
    return Clip(sample.id, path, np.array(truth), np.repeat(visible[None], n, 0),
                np.array(cover), sample.keypoints_3d, True)


def labelled_clips(samples: int, frames: int, rng: np.random.Generator,
                   occluders: list[Occluder], folder: Path) -> list[Clip]:
    """The first ``samples`` labelled images as ``still_clip``s of ``frames`` frames."""
    manifest = read_labelled_manifest(DATA / "labelled" / "manifest.json")[:samples]
    return [still_clip(s, occluders, rng, frames, folder) for s in manifest]


def occluded_video(source: Path, reference: dict, occluders: list[Occluder],
                   rng: np.random.Generator, folder: Path, every: int = 45) -> Clip:
    """``source`` with an occluder pass every ``every`` frames over the hand the clean run
    detected (``reference``: its keypoints (T, 21, 2) and found (T,))."""
    keypoints, found = reference["keypoints"], reference["found"]
    passes = []
    for first in range(every // 2, len(found) - every // 2, every):
        if found[first]:
            span = int(rng.integers(round(0.2 * FPS), round(1.0 * FPS) + 1))
            occluder = occluders[int(rng.integers(len(occluders)))]
            passes.append(plan_pass(rng, occluder, truth_box(keypoints[first]), first, span))
    cover = np.zeros((len(found), 21), bool)

    def frames():
        for t, (rgb, _) in enumerate(iter_frames(str(source))):
            for p in passes:
                if (centre := p.centre(t)) is not None:
                    rgb = composite(rgb, p.occluder, centre)
                    if found[t]:
                        cover[t] |= covered(keypoints[t], p.occluder, centre)
            yield rgb

    path = folder / f"occluded_{source.stem}.mp4"
    write_video(str(path), frames(), FPS)
    return Clip(f"{source.name} occluded", path, keypoints,
                np.repeat(found[:, None], 21, 1), cover, None, False)


def detected_hand(store: DatasetStore, video: str) -> dict:
    """The clean run's reference: the detector's hand per frame (the larger-scored slot)."""
    arrays = store.stage(video, "detect")
    present, score = arrays.read("present"), arrays.read("score")
    slot = np.argmax(np.where(present, score, -1), axis=1)
    rows = np.arange(len(slot))
    return {"keypoints": arrays.read("keypoints")[rows, slot, :, :2].astype(float),
            "found": present[rows, slot]}


def match(points: np.ndarray, present: np.ndarray, truth: np.ndarray, visible: np.ndarray
          ) -> int | None:
    """The slot whose joints' centre is nearest the truth's, within 0.75 hand sizes."""
    if not visible.any() or not present.any():
        return None
    centre = truth[visible].mean(0)
    distance = np.full(len(present), np.inf)
    distance[present] = np.linalg.norm(points[present][:, visible].mean(1) - centre, axis=1)
    best = int(np.argmin(distance))
    return best if distance[best] < 0.75 * hand_size(truth, visible) else None


def pa_mm(joints: np.ndarray, truth: np.ndarray) -> float:
    return float(procrustes_errors(joints[None], truth[None]).mean())


def frame_rows(store: DatasetStore, video: str, clip: Clip, labels_group: str = "reconstruct"
               ) -> list[dict]:
    """Per frame: class, and per method (detector, labels) found, 2D px and PA mm (the
    labels in ``labels_group``: a round's, ``tasks/rounds.py``)."""
    detect, labels = store.stage(video, "detect"), store.stage(video, labels_group)
    searched = detect.read("searched")
    methods = {
        "detector": (detect.read("present"), detect.read("keypoints")[..., :2],
                     detect.read("world"), None),
        "labels": (labels.read("present"), labels.read("keypoints_2d"),
                   labels.read("joints_3d"), labels.read("interpolated")),
    }
    quality = labels.read("quality")
    rows = []
    for t in range(len(clip.truth)):
        visible = clip.visible[t]
        if not visible.any():
            continue
        share = clip.covered[t].sum() / visible.sum()
        row = {"clip": clip.name, "frame": t,
               "class": "clean" if share == 0 else "heavy" if share >= HEAVY else "occluded"}
        for name, (present, points, joints, interpolated) in methods.items():
            slot = match(points[t], present[t], clip.truth[t], visible)
            row[f"{name} found"] = slot is not None
            if slot is None:
                continue
            row[f"{name} px"] = float(np.linalg.norm(
                points[t, slot][visible] - clip.truth[t][visible], axis=1).mean())
            if clip.truth_3d is not None and np.isfinite(joints[t, slot]).all():
                row[f"{name} mm"] = pa_mm(joints[t, slot], clip.truth_3d)
            if name == "labels":
                row["labels interpolated"] = bool(interpolated[t, slot])
                row["labels quality"] = float(quality[t, slot])
                row["labels hand sizes"] = row["labels px"] / hand_size(clip.truth[t], visible)
            else:
                row["found by search"] = bool(searched[t, slot])
        rows.append(row)
    return rows


def findable(rows: pd.DataFrame) -> pd.DataFrame:
    """The clips whose hand the detector finds on at least ``FINDABLE`` of their clean
    frames: where it cannot find the hand at all (COCO's 11-24 px hands), occlusion is not
    what loses it."""
    clean = rows[rows["class"] == "clean"].groupby("clip")["detector found"].mean()
    return rows[rows["clip"].isin(clean.index[clean >= FINDABLE])]


def joint_rows(store: DatasetStore, video: str, clip: Clip) -> list[dict]:
    """Per visible joint of each detected, labelled frame: covered (truth) and the labels'
    ``visible`` estimate, derived from the stored labels, detections and weights with
    ``joint_visibility`` as the fit does (so a new threshold is measured without a refit)."""
    import torch

    from handlabel.models.appearance import colour_distances
    from handlabel.models.fit.visibility import joint_visibility
    from handlabel.models.keypoints import hand_sizes
    from handlabel.models.weights import UNLIKE_HAND

    labels, detect = store.stage(video, "reconstruct"), store.stage(video, "detect")
    present, points = labels.read("present"), labels.read("keypoints_2d")
    filled = labels.read("interpolated")
    keypoints, weights = detect.read("keypoints"), store.stage(video, "weight").read("joint")
    unlike = (store.stage(video, "weight").read("flags") & UNLIKE_HAND) > 0
    detected, confidence = keypoints[..., :2], keypoints[..., 2]
    colour = np.stack([colour_distances(detect.read("joint_colour")[:, s],
                                        detect.read("present")[:, s]) for s in range(2)], axis=1)
    visible = np.stack([joint_visibility(
        torch.from_numpy(points[:, s]), torch.from_numpy(detected[:, s]),
        torch.from_numpy(np.nan_to_num(weights[:, s])),
        torch.from_numpy(np.nan_to_num(hand_sizes(detected[:, s]), nan=1.0)),
        torch.from_numpy(present[:, s] & ~filled[:, s]), torch.from_numpy(unlike[:, s])
        ).numpy() for s in range(2)], axis=1)
    rows = []
    for t in range(len(clip.truth)):
        slot = match(points[t], present[t], clip.truth[t], clip.visible[t])
        if slot is None or filled[t, slot]:
            continue
        size = max(float(hand_sizes(detected[t:t + 1, slot])[0]), 1.0)
        rows += [{"clip": clip.name, "covered": bool(clip.covered[t, j]),
                  "visible": bool(visible[t, slot, j]),
                  "confidence": float(confidence[t, slot, j]),
                  "colour": float(colour[t, slot, j]),
                  "residual": float(np.linalg.norm(points[t, slot, j] - detected[t, slot, j])
                                    / size)}
                 for j in np.flatnonzero(clip.visible[t])]
    return rows


def covered_auc(score: pd.Series, covered: pd.Series) -> float:
    """How well ``score`` ranks covered joints above uncovered ones (Mann-Whitney AUC;
    0.5: not at all)."""
    ranks = score.rank()
    n1, n0 = int(covered.sum()), int((~covered).sum())
    return float((ranks[covered].sum() - n1 * (n1 + 1) / 2) / max(n1 * n0, 1))


def visibility_summary(joints: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """How well ``visible`` tells covered joints, on the clips whose threshold was chosen
    (even-numbered among every labelled clip's name, sorted) and on the others."""
    names = sorted(names)
    out = {}
    for half, chosen in (("tuning half", names[0::2]), ("held-out half", names[1::2])):
        part = joints[joints["clip"].isin(chosen)]
        covered, visible = part["covered"], part["visible"]
        out[half] = {"joints": len(part), "covered": int(covered.sum()),
                     "covered called not visible": (~visible[covered]).mean(),
                     "uncovered called visible": visible[~covered].mean(),
                     "called visible and uncovered": (~covered[visible]).mean(),
                     "AUC of low confidence": covered_auc(-part["confidence"], covered),
                     "AUC of fit residual": covered_auc(part["residual"], covered),
                     "AUC of colour distance": covered_auc(part["colour"], covered)}
    return pd.DataFrame(out).T


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per frame class: frames, found rates, mean errors (each over its own found frames,
    then over the frames both found)."""
    out = []
    heavy_too = rows["class"].isin(["occluded", "heavy"])
    for name, part in (("clean", rows[rows["class"] == "clean"]), ("occluded", rows[heavy_too]),
                       ("heavy (>= 30%)", rows[rows["class"] == "heavy"])):
        both = part[part["detector found"] & part["labels found"]]
        line = {"frames": len(part), "detector found": part["detector found"].mean(),
                "of them by search": part["found by search"].fillna(False).astype(bool).sum()
                / max(part["detector found"].sum(), 1),
                "labels present": part["labels found"].mean()}
        for unit in ("px", "mm"):
            if f"detector {unit}" not in part:
                continue
            line[f"detector {unit}"] = part[f"detector {unit}"].mean()
            line[f"labels {unit}"] = part[f"labels {unit}"].mean()
            line[f"both: detector {unit}"] = both[f"detector {unit}"].mean()
            line[f"both: labels {unit}"] = both[f"labels {unit}"].mean()
        if "labels interpolated" in part:
            line["labels interpolated"] = part["labels interpolated"].fillna(False).astype(
                bool).sum()
        out.append(pd.Series(line, name=name))
    return pd.DataFrame(out)


def quality_summary(rows: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Per band of the labels' quality score: how many labels, their mean error in hand
    sizes and the share off by more than 0.2 hand sizes (PCK@0.2's line): whether the
    ``low_quality`` flag (quality below ``export.flag_below``, 0.1) marks the bad labels;
    and Spearman's correlation of quality and error over every label."""
    found = rows[rows["labels found"]]
    band = pd.cut(found["labels quality"], [0, 0.05, 0.1, 0.2, 0.4, 1.0], include_lowest=True)
    error = found["labels hand sizes"].groupby(band, observed=False)
    table = pd.DataFrame({"labels": error.size(), "share": error.size() / len(found),
                          "mean error (hand sizes)": error.mean(),
                          "off by > 0.2": error.apply(lambda e: (e > 0.2).mean())})
    return table, found["labels quality"].corr(found["labels hand sizes"], method="spearman")


def config_of(variant: str) -> HandlabelConfig:
    base = HandlabelConfig(train=TINY_TRAINING).model_dump()
    return HandlabelConfig.model_validate(_merge(base, VARIANTS[variant]))


def _merge(base: dict, change: dict) -> dict:
    out = dict(base)
    for key, value in change.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) else value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=53, help="labelled images used")
    parser.add_argument("--frames", type=int, default=60, help="frames per labelled clip")
    parser.add_argument("--video", default="right_hand_office.mp4",
                        help="sample video occluded (under ../shared/data/videos; '' for none)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--store", help="store folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from handlabel.tasks.native_logs import quiet_native_logs

    quiet_native_logs()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = DatasetStore(args.store or str(folder / "store"))
        rng = np.random.default_rng(args.seed)
        occluders = load_occluders()
        clips = labelled_clips(args.samples, args.frames, rng, occluders, folder)
        if args.video:
            source = DATA / "videos" / args.video
            clean = label_videos(store, [source], config_of("default"))[0]
            clips.append(occluded_video(source, detected_hand(store, clean), occluders, rng,
                                        folder))
        for variant in args.variants:
            started = time.perf_counter()
            videos = label_videos(store, [c.path for c in clips], config_of(variant))
            seconds = time.perf_counter() - started
            joints = pd.DataFrame([r for c, v in zip(clips, videos, strict=True) if c.exact
                                   for r in joint_rows(store, v, c)])
            if len(joints):
                print(f"\n### {variant}: the visibility estimate against the covered joints "
                      "(labelled clips)\n")
                names = [c.name for c in clips if c.exact]
                print(visibility_summary(joints, names).to_markdown(floatfmt=".3g"))
            for exact, title in ((True, "labelled clips (truth)"),
                                 (False, f"{args.video}, occluded (reference: the clean "
                                  "video's detections)")):
                rows = pd.DataFrame([r for c, v in zip(clips, videos, strict=True)
                                     if c.exact == exact for r in frame_rows(store, v, c)])
                if not len(rows):
                    continue
                rows = findable(rows)
                print(f"\n### {variant}: {title}, {rows['clip'].nunique()} clips "
                      f"({seconds:.0f} s for every stage)\n")
                print(summary(rows).to_markdown(floatfmt=".3g"))
                if exact:
                    table, spearman = quality_summary(rows)
                    print(f"\n### {variant}: the quality score against the labels' error "
                          f"(labelled clips, every frame class; Spearman {spearman:.3f})\n")
                    print(table.to_markdown(floatfmt=".3g"))
    print("\n.venv/bin/python bench/occlusion.py " + " ".join(
        f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v if v != '' else repr('')}"
        for k, v in vars(args).items() if v is not None))


if __name__ == "__main__":
    main()
