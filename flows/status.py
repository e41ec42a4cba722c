"""The status table: videos x stages, readable in an 80-column terminal."""

from __future__ import annotations

import pandas as pd
from rich import box
from rich.markup import escape
from rich.table import Table

from .stages import MANIFEST_STAGES as STAGES

_CELL = {"done": "[green]done[/]", "running": "[yellow]run[/]",
         "failed": "[bold red]FAIL[/]", "interrupted": "[bold red]INT[/]",
         "pending": "[dim]-[/]"}
_INTERRUPTED = ("the run doing it ended before it recorded an outcome "
                "(killed, or its machine lost); `handlabel rerun` redoes it")


def _number(value, fmt: str = "{:.0f}") -> str:
    return "-" if pd.isna(value) else fmt.format(value)


def status_table(manifest: pd.DataFrame, title: str, long: bool = False) -> Table:
    """One row per video, one column per stage; ``long`` adds id, size, fps and ingest time."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1),
                  collapse_padding=True, show_edge=False,
                  caption="- pending, run = running, INT = interrupted",
                  caption_justify="left")
    longest = int(manifest["name"].fillna("?").str.len().max()) if len(manifest) else 5
    table.add_column("video", overflow="fold", min_width=min(longest, 28))
    if long:
        for name in ("id", "size", "fps", "ingest s"):
            table.add_column(name, no_wrap=True)
    table.add_column("frames", justify="right", no_wrap=True)
    for stage in STAGES:
        table.add_column(stage[:6], no_wrap=True)
    for _, row in manifest.iterrows():
        name = escape(row["name"] or "?")
        if isinstance(row["superseded_by"], str):
            name = f"[dim]{name} (superseded by {row['superseded_by'][:8]})[/]"
        details = []
        if long:
            size = "-" if pd.isna(row["width"]) else f"{int(row['width'])}x{int(row['height'])}"
            details = [row["video_id"], size, _number(row["fps"], "{:.2f}"),
                       _number(row["ingest_seconds"], "{:.1f}")]
        table.add_row(name, *details, _number(row["n_frames"]),
                      *(_CELL.get(row[f"{s}_state"], row[f"{s}_state"]) for s in STAGES))
    return table


def rounds_line(root) -> str | None:
    """One line on the store's rounds of fit and training (``tasks/rounds.py``'s record,
    the ``rounds`` group's attrs), None where none ran."""
    record = dict(root["rounds"].attrs) if "rounds" in root else {}
    if not record.get("rounds"):
        return None
    checks = ", ".join(
        f"round {r['round']} {_number(r['labels_px'], '{:.2f}')} px"
        f"{'' if r['kept'] else ' (not kept)'}" for r in record["rounds"])
    state = "" if record.get("complete") else " (unfinished: `handlabel rerun` redoes them)"
    return (f"rounds: labels from round {record['kept']}{state}; self-check {checks}; "
            f"{record.get('stopped', '')}")


def failures(manifest: pd.DataFrame) -> list[str]:
    """One line per failed or interrupted stage of a current video: what failed and why (a
    superseded video's old failure is history, not a failure)."""
    lines = []
    for _, row in manifest[manifest["superseded_by"].isna()].iterrows():
        for stage in STAGES:
            if row[f"{stage}_state"] == "failed":
                lines.append(f"failed {row['name']} [{stage}]: {row[f'{stage}_error']}")
            elif row[f"{stage}_state"] == "interrupted":
                lines.append(f"interrupted {row['name']} [{stage}]: {_INTERRUPTED}")
    return lines
