"""The self-check of every round a store's rounds stage made, per video and pooled: how far
each round's labels, fitted without a hidden span, land from the detector's detections
there (no truth needed), beside a straight line between the span's ends.

    .venv/bin/python bench/rounds_selfcheck.py STORE

Run it on a store made with ``train.rounds.count`` > 0 (``handlabel run ... --config C``);
it reads ``videos/<id>/rounds/<k>/labels`` and the stage's record, and changes nothing.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import pandas as pd

from handlabel.storage.store import DatasetStore
from handlabel.tasks.rounds import RoundCheck, pooled_check, read_record, selfcheck_values


def round_rows(store: DatasetStore) -> pd.DataFrame:
    record = read_record(store)
    if not record.get("rounds"):
        raise SystemExit(f"{store.url}: no rounds of fit and training in this store")
    videos = store.videos_done("reconstruct")
    parts = [(store.manifest.get(v)["name"], [v]) for v in videos] + [("store (pooled)", videos)]
    rows = []
    for name, members in parts:
        row = {"video": name}
        for k, made in enumerate(record["rounds"]):
            check = pooled_check(k, [selfcheck_values(store, v, f"rounds/{k}/labels")
                                     for v in members])
            mark = "" if made["kept"] or len(members) == 1 else " (not kept)"
            row |= {"hidden frames": check.frames, f"round {k} px": f"{_px(check)}{mark}",
                    "straight line px": _px(replace(check, labels_px=check.interpolation_px))}
        rows.append(row)
    table = pd.DataFrame(rows)
    return table[[c for c in table.columns if c != "straight line px"] + ["straight line px"]]


def _px(check: RoundCheck) -> str:
    return "-" if check.labels_px is None else f"{check.labels_px:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    args = parser.parse_args()
    store = DatasetStore(args.store, create=False)
    print(round_rows(store).to_markdown(index=False))
    record = read_record(store)
    print(f"\nlabels from round {record['kept']}: {record.get('stopped', '')}")
    print(f"\n.venv/bin/python bench/rounds_selfcheck.py {args.store}")


if __name__ == "__main__":
    main()
