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

# The Ray tests run on their own, one after another: they share one loopback cluster, and Ray drivers in
# two xdist workers of one session were seen to hang connecting to it. Exit status 5 = none selected.
test: setup-test
	$(BIN)/python -m pytest -n 2 -m "not ray" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m ray $(PYTEST_ARGS) || test $$? -eq 5

lint: setup-test
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
