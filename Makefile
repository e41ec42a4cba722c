# Each target sets up .venv/ first (a no-op once done).
.PHONY: setup demo test lint bench

setup:
	@./scripts/setup.sh

demo: setup
	.venv/bin/handlabel demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python bench/ingest.py
	.venv/bin/python bench/detect.py
