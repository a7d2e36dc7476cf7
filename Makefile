# The same checks as .ci/run, one target each; `make check` runs them all.
PY ?= .venv/bin/python

.PHONY: check lint format typecheck test

check: lint typecheck test

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest
