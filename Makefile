# The same checks as .ci/run, one target each; `make check` runs them all.
PY ?= .venv/bin/python

.PHONY: check lint typecheck test

check: lint typecheck test

lint:
	$(PY) -m ruff check .

typecheck:
	$(PY) -m mypy

test:
	$(PY) -m pytest
