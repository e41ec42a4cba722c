#!/usr/bin/env bash
# Install the optional OpenPifPaf detector backend (AGPL-3.0) into .venv/.
#
# openpifpaf 0.13.11's metadata pins torch 1.13, so pip's resolver cannot install it beside a
# current torch. It builds against the installed torch (about 3 min) with build isolation and
# dependency resolution off; its pure-Python needs and the torchvision release that pairs with
# the installed torch are installed explicitly. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
pip=("$py" -m pip --disable-pip-version-check)

if "$py" -c "import importlib.metadata as m; assert m.version('openpifpaf') == '0.13.11'" 2>/dev/null; then
  exit 0
fi
torch_minor=$("$py" -c "import torch; print(torch.__version__.split('.')[1])")
torchvision="torchvision==0.$((torch_minor + 15)).*"   # torch 2.N pairs with torchvision 0.(N+15)
echo "setup: installing the OpenPifPaf extra ($torchvision, openpifpaf 0.13.11 from source)"
"${pip[@]}" install --quiet --no-deps "$torchvision" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"${pip[@]}" install --quiet pysparkling scipy pillow python-json-logger importlib_metadata
"${pip[@]}" install --quiet --no-build-isolation --no-deps openpifpaf==0.13.11
