"""The manifest: one row per video with each stage's state, error, timings and config hash.

Each row is its own Parquet file (``manifest/<video_id>.parquet``), replaced atomically, so
workers updating different videos never write the same object; together the files form one
Parquet table that pandas reads with ``pd.read_parquet(STORE + "/manifest")``.

A stage is "running" only while a live run holds the store's run lock
(:mod:`.run_lock`); :meth:`Manifest.table` reads a running stage of a run that is gone
(killed, crashed, its machine lost) as "interrupted", which counts as not done.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from enum import StrEnum

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .fs import atomic_write, filesystem, join
from .run_lock import run_owner

STAGES = ("ingest", "detect", "weight", "train", "reconstruct", "export")


class StageState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # read, never written: "running" with no live run


NOT_DONE_AFTER_RUN = (StageState.FAILED, StageState.INTERRUPTED)  # what a rerun must redo


_VIDEO_FIELDS = [
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("name", pa.string()),
    pa.field("source_uri", pa.string()),
    pa.field("aliases", pa.list_(pa.string())),
    # set when every URL of this content now holds other content: the id of the newest one
    pa.field("superseded_by", pa.string()),
    pa.field("size_bytes", pa.int64()),
    pa.field("content_hash", pa.string()),
    pa.field("n_frames", pa.int64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("fps", pa.float64()),
    pa.field("intrinsics_estimated", pa.bool_()),
    # stage summaries
    pa.field("detect_hand_frames", pa.int64()),
    pa.field("detect_two_hand_frames", pa.int64()),
    pa.field("detect_mean_confidence", pa.float64()),
    # hand-frames whose side the whole-video identity step changed (models/identity.py)
    pa.field("detect_moved_sides", pa.int64()),
    pa.field("weight_mean_joint", pa.float64()),
    pa.field("weight_outlier_fraction", pa.float64()),
    pa.field("weight_gated_fraction", pa.float64()),
    # detected joints whose colour is unlike their hand's (models/appearance.py): covered
    pa.field("weight_unlike_fraction", pa.float64()),
    pa.field("reconstruct_mean_quality", pa.float64()),
    pa.field("reconstruct_median_reprojection_px", pa.float64()),
    pa.field("reconstruct_interpolated", pa.int64()),
    # the self-check (models/fit/selfcheck.py): hidden frames measured, median pixels from
    # the hidden detections of the labels' fit without them and of straight-line interpolation
    pa.field("reconstruct_selfcheck_frames", pa.int64()),
    pa.field("reconstruct_selfcheck_px", pa.float64()),
    pa.field("reconstruct_selfcheck_interpolation_px", pa.float64()),
    pa.field("export_hands", pa.int64()),
]


def _stage_fields(stage: str) -> list[pa.Field]:
    return [
        pa.field(f"{stage}_state", pa.string()),
        pa.field(f"{stage}_error", pa.string()),
        pa.field(f"{stage}_started", pa.timestamp("ms", tz="UTC")),
        pa.field(f"{stage}_finished", pa.timestamp("ms", tz="UTC")),
        pa.field(f"{stage}_seconds", pa.float64()),
        pa.field(f"{stage}_config_hash", pa.string()),
    ]


SCHEMA = pa.schema(_VIDEO_FIELDS + [f for stage in STAGES for f in _stage_fields(stage)])


def _empty_row(video_id: str) -> dict:
    row = dict.fromkeys(SCHEMA.names)
    row["video_id"] = video_id
    row["aliases"] = []
    for stage in STAGES:
        row[f"{stage}_state"] = StageState.PENDING.value
    return row


class Manifest:
    """Read and update the rows of one store's manifest."""

    def __init__(self, store_url: str):
        self.store_url = store_url
        self.url = join(store_url, "manifest")
        self.fs, self.path = filesystem(self.url)

    def _row_path(self, video_id: str) -> str:
        return f"{self.path}/{video_id}.parquet"

    def get(self, video_id: str) -> dict | None:
        """A video's row, or None if it has none (one read: on an object store, one
        request, where a check and an open took three)."""
        try:
            data = self.fs.cat_file(self._row_path(video_id))
        except FileNotFoundError:
            return None
        return _read_rows(data).to_pylist()[0]

    def upsert(self, video_id: str, **fields) -> dict:
        """Create or update a video's row; unknown field names are an error."""
        unknown = set(fields) - set(SCHEMA.names)
        if unknown:
            raise KeyError(f"not manifest columns: {sorted(unknown)}")
        row = self.get(video_id) or _empty_row(video_id)
        row.update(fields)
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([row], schema=SCHEMA), buffer)
        atomic_write(self.fs, self._row_path(video_id), buffer.getvalue())
        return row

    def add_aliases(self, video_id: str, urls: list[str]) -> None:
        """Record URLs under which this video's content is seen now (renamed copies); a
        content seen again is current, not superseded."""
        row = self.get(video_id)
        aliases = list(row["aliases"] or []) if row else []
        new = [u for u in dict.fromkeys(urls) if u not in aliases]
        if new or (row and row["superseded_by"]):
            self.upsert(video_id, aliases=aliases + new, superseded_by=None)

    def supersede(self, current: dict[str, str]) -> list[str]:
        """Forget URLs that now hold other content (``current``: URL -> its video id now).
        A row left with no URL is marked superseded by its source's newest content, so a
        source path's latest content decides its state; returns the superseded ids."""
        superseded = []
        for row in self.table().to_dict("records"):
            if isinstance(row["superseded_by"], str):
                continue
            recorded = [row["source_uri"], *(list(row["aliases"]) if row["aliases"] is not None
                                               else [])]
            urls = [u for u in dict.fromkeys(recorded) if isinstance(u, str)]
            replaced = [u for u in urls if current.get(u, row["video_id"]) != row["video_id"]]
            if not replaced:
                continue
            kept = [u for u in urls if u not in replaced]
            if kept:
                self.upsert(row["video_id"], source_uri=kept[0], aliases=kept)
            else:
                self.upsert(row["video_id"], superseded_by=current[replaced[0]])
                superseded.append(row["video_id"])
        return superseded

    def start_stage(self, video_id: str, stage: str, config_hash: str) -> datetime:
        started = datetime.now(UTC)
        self.upsert(
            video_id,
            **{
                f"{stage}_state": StageState.RUNNING.value,
                f"{stage}_error": None,
                f"{stage}_started": started,
                f"{stage}_finished": None,
                f"{stage}_seconds": None,
                f"{stage}_config_hash": config_hash,
            },
        )
        return started

    def finish_stage(
        self, video_id: str, stage: str, started: datetime, error: str | None = None, **fields
    ) -> dict:
        finished = datetime.now(UTC)
        state = StageState.FAILED if error else StageState.DONE
        return self.upsert(
            video_id,
            **fields,
            **{
                f"{stage}_state": state.value,
                f"{stage}_error": error,
                f"{stage}_finished": finished,
                f"{stage}_seconds": (finished - started).total_seconds(),
            },
        )

    def table(self) -> pd.DataFrame:
        """All rows, one per video, sorted by name (an empty table with the schema if none)."""
        paths = sorted(self.fs.glob(f"{self.path}/*.parquet"))
        # every row in one call: an object store's filesystem fetches them concurrently
        # (one request a row, where a check and an open each took two, one after another);
        # a row removed since the listing is left out
        rows = self.fs.cat(paths, on_error="omit") if paths else {}
        if not rows:
            return SCHEMA.empty_table().to_pandas()
        frame = pa.concat_tables([_read_rows(data) for data in rows.values()]).to_pandas()
        self._mark_interrupted(frame)
        return frame.sort_values(["name", "video_id"], na_position="last").reset_index(drop=True)

    def _mark_interrupted(self, frame: pd.DataFrame) -> None:
        columns = [f"{stage}_state" for stage in STAGES]
        running = frame[columns] == StageState.RUNNING.value
        if running.to_numpy().any() and run_owner(self.store_url) is None:
            frame[columns] = frame[columns].mask(running, StageState.INTERRUPTED.value)


def _read_rows(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data), schema=SCHEMA)
