"""3D joint metrics of METHOD.md section 4: MPJPE (root-relative), PA-MPJPE (Procrustes with
scale, per sample), and the AUC of the 3D PCK over 0-50 mm (100 thresholds). Inputs in
metres, (N, J, 3); results in millimetres."""

from __future__ import annotations

import numpy as np
import roma
import torch

ROOT = 0  # the wrist


def root_relative_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, J) distances after moving both wrists to the origin, mm."""
    p = predicted - predicted[:, ROOT : ROOT + 1]
    t = truth - truth[:, ROOT : ROOT + 1]
    return 1000 * np.linalg.norm(p - t, axis=-1)


def procrustes_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, J) distances after the best similarity transform of each prediction onto its
    truth, mm."""
    p = torch.as_tensor(predicted, dtype=torch.float64)
    t = torch.as_tensor(truth, dtype=torch.float64)
    rotation, translation, scale = roma.rigid_points_registration(p, t, compute_scaling=True)
    aligned = scale[:, None, None] * torch.einsum("bij,bnj->bni", rotation, p) + translation[
        :, None]
    return 1000 * (aligned - t).norm(dim=-1).numpy()


def pck_auc_3d(errors_mm: np.ndarray, max_mm: float = 50.0, steps: int = 100) -> float:
    """Area under the PCK curve over ``steps`` thresholds from 0 to ``max_mm``, in [0, 1]."""
    errors = np.asarray(errors_mm).ravel()
    thresholds = np.linspace(0, max_mm, steps)
    return float(np.mean([(errors <= t).mean() for t in thresholds]))


def summarise_3d(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    mpjpe = root_relative_errors(predicted, truth)
    pa = procrustes_errors(predicted, truth)
    return {"mpjpe_mm": float(mpjpe.mean()), "pa_mpjpe_mm": float(pa.mean()),
            "auc_0_50": pck_auc_3d(mpjpe), "pa_auc_0_50": pck_auc_3d(pa)}
