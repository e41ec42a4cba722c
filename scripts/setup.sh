#!/usr/bin/env bash
# Create .venv/ in the project root and install handlabel with everything it needs.
# Idempotent: does nothing when pyproject.toml and this script are unchanged since the last run.
#
#   TORCH_SPEC       torch requirement to install first (default torch==2.13.0: the CPU wheel here)
#   TORCH_INDEX_URL  index to take torch from, e.g. https://download.pytorch.org/whl/cu128 for CUDA
#   PYTHON           interpreter for the venv (default python3; needs >= 3.11)
#   HANDLABEL_OPENPIFPAF=1  also install the optional OpenPifPaf backend (make test does)
#   HANDLABEL_PYTORCH3D=1   also install the optional pytorch3d renderer (make test does)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
stamp=.venv/.handlabel-setup
want=$(cat pyproject.toml scripts/setup.sh scripts/build_mediapipe_model.py | sha256sum | cut -c1-16)

# The optional extras, each idempotent; asked for by environment variable.
install_extras() {
  if [ "${HANDLABEL_OPENPIFPAF:-0}" = 1 ]; then ./scripts/install_openpifpaf.sh; fi
  if [ "${HANDLABEL_PYTORCH3D:-0}" = 1 ]; then ./scripts/install_pytorch3d.sh; fi
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  install_extras
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip
# torch first: otherwise a dependency's plain "torch" pulls the newest CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing $TORCH_SPEC"
  "${pip[@]}" install --quiet "$TORCH_SPEC" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
echo "setup: installing handlabel and its dependencies"
"${pip[@]}" install --quiet -e ".[dev]"
# xtcocotools (mmpose's COCO reader and COCO-WholeBody hand evaluation, for the export tests):
# its only wheel is built against NumPy 1 and fails to import beside NumPy 2, so it is built
# here from its sdist against the venv's NumPy (its setup.py imports numpy: no isolation).
"${pip[@]}" install --quiet --no-build-isolation --no-binary xtcocotools "xtcocotools==1.14.3"
# MediaPipe's hand model, built from a registry wheel (the default detector's weights).
.venv/bin/python scripts/build_mediapipe_model.py
install_extras
echo "$want" > "$stamp"
echo "setup: done (.venv/bin/handlabel)"
