# The two front-door commands (see README):
#   make compare   set up, then run the main job (the default comparison study)
#   make test      set up (with test extras), then run the test suite
# Set-up installs torch 2.13.0 (the CPU wheel) first when the environment has no torch, so pip
# never pulls a CUDA build; then decaylab itself in editable mode.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup setup-test compare test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "torch==2.13.0"
	touch $@

$(VENV)/.setup: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.setup-test: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -e '.[test]'
	sh scripts/install-test-system-deps.sh
	touch $@

setup: $(VENV)/.setup

setup-test: $(VENV)/.setup-test

compare: setup
	$(BIN)/decaylab compare

test: setup-test
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: setup-test
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
