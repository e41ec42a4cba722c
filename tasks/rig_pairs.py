"""Training pairs from a store's calibrated rigs: one hand at one instant in two cameras,
matched by geometry (``models/rig/triangulation.matched_slots``), with the transform between
the two crops' camera frames (a left hand's crops are mirrored, and so is its frame)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from handlabel.models.hand.sides import mirror_matrix
from handlabel.models.rig.triangulation import matched_slots
from handlabel.models.tracking import N_SLOTS
from handlabel.storage.store import DatasetStore

from .rig_reconstruct import RigMembers, camera_views


def rig_pairs(store: DatasetStore, index: pd.DataFrame, inlier: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pairs (P, 2) rows of ``index``, R (P, 3, 3), t (P, 3)): every hand of a rig's
    reference camera in ``index`` with its match in each other camera, also in ``index``;
    x_second = R x_first + t in the crops' (possibly mirrored) camera frames, metres."""
    row_of = {(v, int(f), int(s)): i for i, (v, f, s) in
              enumerate(zip(index["video_id"], index["frame"], index["slot"], strict=True))}
    pairs, rotations, translations = [], [], []
    for name in store.rig_names():
        rig = RigMembers(store, name)
        if not all(v in set(index["video_id"]) for v in rig.members.values()):
            continue
        views, P, ref = camera_views(rig), rig.geometry.projections(), rig.reference
        mirrored = [rig.read(c, "detect", "mirrored") for c in range(len(rig.cameras))]
        for frame in range(rig.n_frames):
            slots = matched_slots(views, ref, frame, P, inlier)
            for hand in range(N_SLOTS):
                for camera in range(len(rig.cameras)):
                    if camera == ref or slots[hand, camera] < 0 or slots[hand, ref] < 0:
                        continue
                    a = row_of.get(_key(rig, ref, frame, hand))
                    b = row_of.get(_key(rig, camera, frame, slots[hand, camera]))
                    if a is None or b is None:
                        continue
                    R, t = rig.geometry.between(ref, camera)
                    flip_a = mirror_matrix(mirrored[ref][frame, hand])
                    flip_b = mirror_matrix(mirrored[camera][frame, slots[hand, camera]])
                    pairs.append((a, b))
                    rotations.append(flip_b @ R @ flip_a)
                    translations.append(flip_b @ t)
    if not pairs:
        return np.zeros((0, 2), int), np.zeros((0, 3, 3)), np.zeros((0, 3))
    return np.array(pairs), np.stack(rotations), np.stack(translations)


def _key(rig: RigMembers, camera: int, frame: int, slot: int) -> tuple[str, int, int]:
    name = rig.cameras[camera]
    return rig.members[name], frame + rig.offsets[name], int(slot)
