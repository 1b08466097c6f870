# The two commands of the README. Both set the environment up first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean

setup:
	bash scripts/bootstrap.sh

demo: setup
	$(PY) examples/demo.py

test: setup
	$(VENV)/bin/ruff check assistant chains memory retrievers tests examples benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check assistant chains memory retrievers tests examples benchmarks
	$(VENV)/bin/ruff format --check assistant chains memory retrievers tests examples benchmarks
	$(VENV)/bin/mypy

bench: setup
	$(PY) benchmarks/bench_pipeline.py

clean:
	rm -rf .assistant .pytest_cache
