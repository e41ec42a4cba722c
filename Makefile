# Each target sets up .venv/ first (a no-op once done).
.PHONY: setup demo test lint bench

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/handlabel demo

# Tests cover the optional OpenPifPaf backend and pytorch3d renderer too, so they install
# them (about 3 min and seconds, once).
test:
	@HANDLABEL_OPENPIFPAF=1 HANDLABEL_PYTORCH3D=1 ./scripts/setup.sh
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n $$(( $$(nproc) + 1 )) --dist loadfile --durations=25

lint: setup
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python bench/ingest.py
	.venv/bin/python bench/detect.py
	.venv/bin/python bench/render.py
	.venv/bin/python bench/train.py
	.venv/bin/python bench/pipeline.py
