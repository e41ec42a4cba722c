"""FreiHAND-style files: per sample K, xyz (21x3, camera frame, metres), verts (Vx3) and the
hand-model parameters, as parallel JSON lists (like FreiHAND's training_K.json, ...).

``mano`` rows hold [global rotation 3, joint rotations 45, shape S, translation 3] as in
FreiHAND's 61 numbers for MANO (S = 10 for both the embedded hand and MANO). Our meshes are
``translation + scale * (hand - middle MCP joint)``: ``index.json`` gives ``scale`` and which
hands are left (mirrored parameters, the left-hand convention). The embedded default hand has
801 vertices, not MANO's 778.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def freihand_lists(hands: pd.DataFrame, vertices: list[np.ndarray], K: dict[str, np.ndarray]
                   ) -> dict[str, list]:
    """The file contents by name: K, xyz, verts, mano, index."""
    files = {"K": [], "xyz": [], "verts": [], "mano": [], "index": []}
    for (_, row), verts in zip(hands.iterrows(), vertices, strict=True):
        files["K"].append(np.asarray(K[row["video_id"]], dtype=float).tolist())
        files["xyz"].append(np.asarray(row["joints_3d"], dtype=float).reshape(21, 3).tolist())
        files["verts"].append(np.round(verts.astype(float), 6).tolist())
        params = np.concatenate([row["global_orient"], row["hand_pose"], row["betas"],
                                 row["translation"]]).astype(float)
        files["mano"].append([params.tolist()])
        files["index"].append({"video_id": row["video_id"], "frame": int(row["frame"]),
                               "side": row["side"], "scale": float(row["scale"]),
                               "quality": float(row["quality"]),
                               "low_quality": bool(row["low_quality"])})
    return files
