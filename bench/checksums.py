"""What the chunk checksums cost on a store: bytes, CRC-32C time, and a whole verify.

    .venv/bin/python bench/checksums.py STORE [--repeats 3]

Every chunk object carries 4 bytes of CRC-32C (zarr's crc32c codec), computed once when it is
written and checked on every read. The table gives the store's chunk objects and bytes, the
bytes the checksums add, the time to compute the CRC of every object (what writing adds in
all and what reading it all back adds), against the time to read the objects' bytes and to
decode them through zarr (what a reader does anyway), and `handlabel verify`'s checks.
"""

from __future__ import annotations

import argparse
import time

import google_crc32c
from timing import median_seconds

from handlabel.storage.fs import filesystem
from handlabel.storage.store import DatasetStore
from handlabel.storage.verify import check_array, plan_jobs, store_arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    store = DatasetStore(args.store, create=False)
    fs, root = filesystem(store.url)
    jobs = plan_jobs(store)
    objects = [fs.cat_file(f"{root}/{job.path}/{key}") for job in jobs for key in job.keys]
    total = sum(len(o) for o in objects)
    frames = sum(len(fs.cat_file(f"{root}/{job.path}/{key}")) for job in jobs
                 for key in job.keys if job.path.endswith("/frames"))

    def read_bytes():
        for job in jobs:
            for key in job.keys:
                fs.cat_file(f"{root}/{job.path}/{key}")

    def crc_all():
        for data in objects:
            google_crc32c.value(data)

    def decode_all():
        for _, array in store_arrays(store):
            array[:]

    def verify_all():
        for job in jobs:
            check_array(store.url, job)

    started = time.perf_counter()
    rows = [("read every object's bytes", median_seconds(read_bytes, args.repeats)),
            ("CRC-32C of every object", median_seconds(crc_all, args.repeats)),
            ("decode every array through zarr (checks included)",
             median_seconds(decode_all, 1)),
            ("verify's checks, one thread (read + CRC)", median_seconds(verify_all, 1))]
    print(f"\n{args.store}: {len(jobs)} arrays, {len(objects)} chunk objects, "
          f"{total / 1e6:.1f} MB ({frames / 1e6:.1f} MB of frames); the checksums add "
          f"{4 * len(objects)} bytes ({4 * len(objects) / total * 100:.4f}%)\n")
    print("| what | seconds |")
    print("|---|--:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} |")
    print(f"\nCRC-32C rate: {total / rows[1][1] / 1e9:.2f} GB/s; measured in "
          f"{time.perf_counter() - started:.0f} s")
    print(f"Reproduce: .venv/bin/python bench/checksums.py {args.store}")


if __name__ == "__main__":
    main()
