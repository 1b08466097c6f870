# The two commands of the README. Both set the environment up first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast lint bench clean

setup:
	bash scripts/bootstrap.sh

demo: setup
	$(PY) examples/demo.py

test: setup
	$(VENV)/bin/ruff check assistant chains memory retrievers tests examples benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest

# The quick tier while you work: no model servers, no real model; under a minute on 2 cores.
# What it leaves out is marked (llm, postgres, chroma_server, fallback_server, slow: pyproject.toml).
test-fast:
	$(PY) -m pytest -q -m "not llm and not postgres and not chroma_server and not fallback_server and not slow"

lint: setup
	$(VENV)/bin/ruff check assistant chains memory retrievers tests examples benchmarks
	$(VENV)/bin/ruff format --check assistant chains memory retrievers tests examples benchmarks
	$(VENV)/bin/mypy

bench: setup
	$(PY) benchmarks/bench_pipeline.py

clean:
	rm -rf .assistant .pytest_cache
