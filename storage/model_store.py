"""Trained models in the store (``models/<name>/``): checkpoints, per-epoch metrics, attributes.

A checkpoint is an opaque byte string (the train task serialises it) kept as a uint8 Zarr
array, so it lives wherever the store lives (local folder or fsspec URL). The newest one is
written under a new name before the ``latest`` attribute points at it, so an interrupted
write never leaves a half checkpoint in use. Metrics are a Parquet table,
``metrics/<name>.parquet``, outside the Zarr hierarchy.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import zarr

from .fs import atomic_write, filesystem, join
from .integrity import array_codecs, checked_read

MODEL = "s2hand"  # the train stage's model; each round of fit and training has its own


class ModelStore:
    def __init__(self, root: zarr.Group, store_url: str, name: str = MODEL):
        self.group = root.require_group(f"models/{name}")
        self.name = name
        self.metrics_url = join(store_url, "metrics", f"{name}.parquet")

    @property
    def attrs(self) -> dict:
        return dict(self.group.attrs)

    def update_attrs(self, **values) -> None:
        self.group.attrs.update(values)

    def reset(self, **attrs) -> None:
        """Forget every checkpoint and metric; start over with these attributes."""
        for key in list(self.group.array_keys()):
            del self.group[key]
        self.group.attrs.clear()
        self.group.attrs.update({**attrs, "latest": None, "complete": False})
        fs, path = filesystem(self.metrics_url)
        if fs.exists(path):
            fs.rm(path)

    def write_checkpoint(self, epoch: int, payload: bytes) -> None:
        name = f"checkpoint_epoch_{epoch:04d}"
        data = np.frombuffer(payload, dtype=np.uint8)
        self.group.create_array(name, data=data, chunks=(1 << 24,), overwrite=True,
                                **array_codecs())
        previous = self.attrs.get("latest")
        self.update_attrs(latest=name, epochs_done=epoch + 1)
        if previous and previous != name and previous in self.group:
            del self.group[previous]

    def latest_checkpoint(self) -> bytes | None:
        name = self.attrs.get("latest")
        return None if not name else checked_read(self.group[name]).tobytes()

    def write_metrics(self, rows: list[dict]) -> None:
        buffer = io.BytesIO()
        pd.DataFrame(rows).to_parquet(buffer, index=False)
        fs, path = filesystem(self.metrics_url)
        atomic_write(fs, path, buffer.getvalue())

    def read_metrics(self) -> pd.DataFrame:
        fs, path = filesystem(self.metrics_url)
        if not fs.exists(path):
            return pd.DataFrame()
        with fs.open(path, "rb") as handle:
            return pd.read_parquet(handle)
