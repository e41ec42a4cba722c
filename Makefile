# Each target sets up .venv/ first (a no-op once done).
.PHONY: setup demo test lint bench

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/handlabel demo

# xdist workers: one more than the cores (the tests wait on servers part of the time), at most
# one per 4 GiB of memory (each starts its own Prefect API and a Dask cluster of 2 workers:
# 4 workers peaked at 13.8 GB here). docs/performance.md, "The test suite".
TEST_WORKERS ?= $(shell awk -v cpus=$$(nproc) '/MemTotal/ {m = int($$2 / 4194304); \
	w = cpus + 1; print (m < w ? (m > 0 ? m : 1) : w)}' /proc/meminfo)

# Tests cover the optional OpenPifPaf backend and pytorch3d renderer too, so they install
# them (about 3 min and seconds, once).
test:
	@HANDLABEL_OPENPIFPAF=1 HANDLABEL_PYTORCH3D=1 ./scripts/setup.sh
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=50

lint: setup
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python bench/ingest.py
	.venv/bin/python bench/detect.py
	.venv/bin/python bench/render.py
	.venv/bin/python bench/train.py
	.venv/bin/python bench/pipeline.py
