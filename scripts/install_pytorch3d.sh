#!/usr/bin/env bash
# Install the optional pytorch3d renderer (BSD-3-Clause) into .venv/.
#
# PyPI has no Linux package of pytorch3d, so it comes from ../shared/vendor/ (beside the
# checkout; PYTORCH3D_VENDOR overrides): the CPU wheel built there for torch 2.13.0+cpu and
# CPython 3.11 when the venv has exactly that pair (seconds), otherwise the vendored source,
# built against the installed torch (about 36 min on 2 cores; FORCE_CUDA=1 with nvcc for a
# CUDA build). Idempotent: does nothing once pytorch3d 0.7.9 imports.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
pip=("$py" -m pip --disable-pip-version-check)
vendor=${PYTORCH3D_VENDOR:-../shared/vendor}
wheel=$vendor/pytorch3d-0.7.9-cp311-cp311-linux_x86_64.whl
source=$vendor/pytorch3d-0.7.9-src.tar.gz

if "$py" -c "import torch, pytorch3d, pytorch3d._C; assert pytorch3d.__version__ == '0.7.9'" 2>/dev/null; then
  exit 0
fi
# iopath is pytorch3d's only requirement; --no-deps below keeps pip from touching torch.
"${pip[@]}" install --quiet iopath
abi=$("$py" -c "import sys, torch; print(f'{torch.__version__} cp{sys.version_info.major}{sys.version_info.minor}')")
if [ "$abi" = "2.13.0+cpu cp311" ] && [ -f "$wheel" ]; then
  echo "setup: installing pytorch3d 0.7.9 from the vendored CPU wheel"
  "${pip[@]}" install --quiet --no-deps "$wheel"
elif [ -f "$source" ]; then
  echo "setup: building pytorch3d 0.7.9 from source for torch/python $abi (about 36 min on 2 cores)"
  build=$(mktemp -d)
  tar -xzf "$source" -C "$build"
  (cd "$build"/pytorch3d-0.7.9 && FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-2} \
     "$OLDPWD/$py" -m pip --disable-pip-version-check install --quiet --no-build-isolation \
     --no-deps .)
  rm -rf "$build"
else
  echo "setup: pytorch3d not installed: $vendor holds neither its wheel nor its source" >&2
  exit 1
fi
"$py" -c "import torch, pytorch3d._C" || { echo "setup: pytorch3d installed but does not load" >&2; exit 1; }
