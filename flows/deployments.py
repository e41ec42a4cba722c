"""``prefect.yaml``'s per-stage deployments, written from the stage registry.

Each stage after ingest gets a ``<stage>-store`` deployment that reruns it over a store. The
block between the two marker lines of ``prefect.yaml`` is generated; ``python -m
handlabel.flows.deployments`` rewrites it after a stage is added (a test fails while it is
stale). Ingest's and the main flow's deployments, with their schedules, are written by hand
above and below it.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from .stages import STAGES

BEGIN = "  # --- generated from flows/stages.py by: python -m handlabel.flows.deployments"
END = "  # --- end of the generated stage deployments"
STORE_PARAMETER = "/data/handlabel-store"


def stage_deployments_yaml() -> str:
    """The generated block, marker lines included."""
    blocks = [BEGIN]
    for stage in STAGES:
        if stage.units == "sources":
            continue
        description = textwrap.fill(f"Rerun the {stage.name} stage over a store. {stage.summary}",
                                    width=88, initial_indent=" " * 6,
                                    subsequent_indent=" " * 6)
        blocks.append(f"""  - name: {stage.name}-store
    description: >
{description}
    entrypoint: {stage.flow}
    parameters:
      store: {STORE_PARAMETER}
      overwrite: false
    work_pool: *process_pool
""")
    blocks.append(END)
    return "\n".join(blocks)


def rewrite(path: Path) -> bool:
    """Replace the generated block of ``path``; returns whether it changed."""
    text = path.read_text()
    try:
        head, rest = text.split(BEGIN + "\n", 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise SystemExit(f"{path}: the generated block's marker lines are missing") from None
    updated = head + stage_deployments_yaml() + tail
    path.write_text(updated)
    return updated != text


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "prefect.yaml")
    print(f"{target}: {'rewritten' if rewrite(target) else 'already current'}")
