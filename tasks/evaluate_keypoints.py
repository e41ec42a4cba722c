"""Evaluate a hand detector on labelled images: detection, 2D accuracy, confidence quality."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from handlabel.models.detectors import HandDetection, HandDetector
from handlabel.models.metrics.keypoints2d import (
    confidence_error_correlation,
    hand_size,
    joint_errors,
    pck,
    pck_auc,
)
from handlabel.storage.labelled import LabelledSample

# The nearest detection is taken as the labelled hand only if its mean error is below this many
# hand sizes; farther, it is another hand and the sample counts as missed.
SAME_HAND_MAX_ERROR = 1.0


def match(hands: list[HandDetection], sample: LabelledSample) -> HandDetection | None:
    if not hands or not sample.visible.any():
        return None
    size = hand_size(sample.keypoints, sample.visible)
    scored = [(np.nanmean(joint_errors(h.keypoints, sample.keypoints, sample.visible)) / size, h)
              for h in hands]
    error, best = min(scored, key=lambda pair: pair[0])
    return best if error <= SAME_HAND_MAX_ERROR else None


def evaluate_keypoints(
    samples: list[LabelledSample], detector: HandDetector,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-sample table, per-joint table) of the detector's results on labelled images."""
    sample_rows, joint_rows = [], []
    for index, sample in enumerate(samples):
        hand = match(detector.detect_image(sample.load_rgb()), sample)
        size = hand_size(sample.keypoints, sample.visible)
        sample_rows.append({
            "id": sample.id, "source": sample.source_name, "detected": hand is not None,
            "hand_side": sample.hand_side, "predicted_side": hand.handedness if hand else None,
            "size_px": size,
        })
        errors = (joint_errors(hand.keypoints, sample.keypoints, sample.visible) if hand
                  else np.where(sample.visible, np.inf, np.nan))
        for joint in np.flatnonzero(sample.visible):
            joint_rows.append({
                "id": sample.id, "source": sample.source_name, "joint": int(joint),
                "detected": hand is not None, "error_px": errors[joint],
                "error_norm": errors[joint] / size,
                "confidence": hand.confidence[joint] if hand else np.nan,
            })
        if progress:
            progress(index + 1, len(samples))
    return pd.DataFrame(sample_rows), pd.DataFrame(joint_rows)


def _summary_row(name: str, per_sample: pd.DataFrame, per_joint: pd.DataFrame) -> dict:
    found = per_joint[per_joint["detected"]]
    sided = per_sample[per_sample["detected"] & per_sample["hand_side"].notna()]
    return {
        "source": name,
        "samples": len(per_sample),
        "detection_rate": per_sample["detected"].mean(),
        "pck@0.2": pck(found["error_norm"].to_numpy()),
        "pck@0.2_all": pck(per_joint["error_norm"].to_numpy()),
        "auc": pck_auc(found["error_norm"].to_numpy()),
        "epe_px": found["error_px"].mean() if len(found) else np.nan,
        "handedness_acc": (sided["hand_side"] == sided["predicted_side"]).mean()
        if len(sided) else np.nan,
        "conf_error_spearman": confidence_error_correlation(
            found["confidence"].to_numpy(float), found["error_norm"].to_numpy(float)),
    }


def summarise(per_sample: pd.DataFrame, per_joint: pd.DataFrame) -> pd.DataFrame:
    """One row per source and one for all: detection rate, PCK@0.2 (detected hands / all,
    missed hands counting as wrong), AUC (0-0.5), EPE px, handedness accuracy, and the
    Spearman correlation between per-joint confidence and error."""
    rows = [
        _summary_row(source, per_sample[per_sample["source"] == source],
                     per_joint[per_joint["source"] == source])
        for source in sorted(per_sample["source"].unique())
    ]
    rows.append(_summary_row("all", per_sample, per_joint))
    return pd.DataFrame(rows)
