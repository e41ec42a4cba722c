"""Start-up against the work: how long the commands take that have little or nothing to do.

    .venv/bin/python bench/startup.py --store demo-store [--repeats 2]

On a complete store (``handlabel demo`` makes one): ``handlabel status``; ``handlabel rerun``
with nothing to do; and a rerun whose only work is one dataset file (``hands.parquet``
deleted first, so export runs alone). Each is the installed command in a fresh process, timed
from start to exit; the median of the repeats is printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMAND = [str(Path(sys.executable).with_name("handlabel"))]


def timed(arguments: list[str], before=None) -> float:
    if before:
        before()
    started = time.perf_counter()
    done = subprocess.run(COMMAND + arguments, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="demo-store", help="a complete store")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    table = Path(args.store, "export", "hands.parquet")
    timed(["rerun", args.store])  # whatever is left, so that the store is complete
    runs = {
        "handlabel status": (["status", args.store], None),
        "handlabel rerun, nothing to do": (["rerun", args.store], None),
        "handlabel rerun, one dataset file to write": (["rerun", args.store],
                                                       lambda: table.unlink()),
    }
    print(f"\nStart-up on {args.store}, median of {args.repeats}\n")
    print("| command | seconds |")
    print("|---|--:|")
    for name, (arguments, before) in runs.items():
        seconds = [timed(arguments, before) for _ in range(args.repeats)]
        print(f"| {name} | {statistics.median(seconds):.1f} |")
    print(f"\nReproduce: .venv/bin/python bench/startup.py --store {args.store} "
          f"--repeats {args.repeats}")


if __name__ == "__main__":
    main()
