"""Whether two stores hold the same labels: every array of both (videos, stages, rigs, the
model's checkpoint) compared value for value, NaN equal to NaN.

    .venv/bin/python bench/compare_stores.py STORE_A STORE_B

Used to show that a change alters nothing a user gets: run the same job with the code
before and after into two stores, then compare them. Exit 1 when any array differs.
"""

from __future__ import annotations

import sys

import numpy as np

from handlabel.storage.store import DatasetStore
from handlabel.storage.verify import store_arrays


def arrays(url: str) -> dict[str, np.ndarray]:
    return {path: array[:] for path, array in store_arrays(DatasetStore(url, create=False))}


def main() -> int:
    first, second = (arrays(url) for url in sys.argv[1:3])
    differing = 0
    for path in sorted(set(first) | set(second)):
        a, b = first.get(path), second.get(path)
        if a is None or b is None:
            print(f"only in one store: {path}")
        elif a.shape != b.shape:
            print(f"{path}: shapes {a.shape} and {b.shape}")
        elif not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            largest = np.nanmax(np.abs(a.astype(float) - b.astype(float))) \
                if a.dtype.kind in "fiu" else "-"
            print(f"{path}: differs (largest difference {largest})")
        else:
            continue
        differing += 1
    print(f"{len(first)} and {len(second)} arrays; {differing} differ")
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
