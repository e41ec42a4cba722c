"""Files under ``STORE/export/``, written whole (atomically) on any fsspec URL."""

from __future__ import annotations

import io

import pandas as pd

from handlabel.storage.fs import atomic_write, filesystem, join
from handlabel.storage.store import DatasetStore


def write_export(store: DatasetStore, relative: str, data: bytes) -> str:
    """Write ``data`` to ``export/<relative>``; returns its URL."""
    url = join(store.url, "export", relative)
    fs, path = filesystem(url)
    atomic_write(fs, path, data)
    return url


def parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()


def read_parquet(store: DatasetStore, relative: str) -> pd.DataFrame:
    fs, path = filesystem(join(store.url, "export", relative))
    with fs.open(path, "rb") as handle:
        return pd.read_parquet(handle)
