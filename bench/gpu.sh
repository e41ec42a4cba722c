#!/usr/bin/env bash
# The GPU pass: one prepared script for a machine that the `device` tool lends (issue 29).
#
# Here, once: fetch the wheels the device image lacks (CPython 3.12, manylinux; ~10 MB):
#     bash bench/gpu.sh --fetch
# There (the device tool's run, carry [".whl"], timeout_s 540; about 2 min of work):
#     bash bench/gpu.sh
# It installs the carried wheels and handlabel itself into /tmp/site (no network there), then
# runs bench/gpu.py, which prints the table and writes it to $OUT/gpu.md when $OUT is set.
# The device image already has torch with CUDA, numpy, pandas, scipy, opencv and pillow.
# pytorch3d's row needs a CUDA wheel of it built for that torch, carried as
# .whl/pytorch3d-*.whl (the vendored CPU wheel is for torch 2.13.0+cpu and CPython 3.11);
# without one, the row says so.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(DEODR==0.2.3 roma==1.8.0 kornia==0.9.0 kornia_rs==0.2.0 trimesh==5.2.0)

if [ "${1:-}" = "--fetch" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
  ls -la .whl
  exit 0
fi

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader || echo "gpu.sh: no nvidia-smi here"
ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu.sh: no .whl/ carried (bash bench/gpu.sh --fetch here, carry .whl)" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
  --target /tmp/site .
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 bench/gpu.py ${OUT:+--out "$OUT/gpu.md"} "$@"
