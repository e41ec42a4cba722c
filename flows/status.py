"""The status table: videos x stages, readable in a terminal."""

from __future__ import annotations

import pandas as pd
from handlabel.storage.manifest import STAGES
from rich.table import Table

_STYLE = {"done": "green", "running": "yellow", "failed": "bold red", "pending": "dim"}


def _cell(state: str | None) -> str:
    state = state or "pending"
    return f"[{_STYLE.get(state, '')}]{state}[/]"


def _frames(row) -> str:
    if pd.isna(row["n_frames"]):
        return "-"
    size = f"{int(row['width'])}x{int(row['height'])}"
    return f"{int(row['n_frames'])} @ {row['fps']:.1f} fps, {size}"


def status_table(manifest: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("video")
    table.add_column("id", style="dim")
    table.add_column("frames")
    for stage in STAGES:
        table.add_column(stage)
    for _, row in manifest.iterrows():
        table.add_row(row["name"] or "?", row["video_id"], _frames(row),
                      *(_cell(row[f"{stage}_state"]) for stage in STAGES))
    return table


def failures(manifest: pd.DataFrame) -> list[str]:
    """One line per failed stage of a video: what failed and why."""
    lines = []
    for _, row in manifest.iterrows():
        for stage in STAGES:
            if row[f"{stage}_state"] == "failed":
                lines.append(f"{row['name']} [{stage}]: {row[f'{stage}_error']}")
    return lines
