# Two commands do all set-up on a fresh machine:
#   make demo   -> venv + install + `softlif demo` (embedded MNIST subset, offline)
#   make test   -> venv + install + ruff + pytest
# The CPU build of torch is pinned here (a bare `torch` would pull a multi-GB CUDA build);
# the package itself only asks for torch>=2.4.
PY ?= python3
VENV ?= .venv
TORCH_PIN ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test bench lint

$(BIN)/softlif: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/softlif

setup: $(BIN)/softlif

demo: setup
	$(BIN)/softlif demo

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts examples

test: lint
	$(BIN)/softlif machine
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/pip install -q -e '.[bench]' -c constraints-cpu.txt
	$(BIN)/python benchmarks/bench_simulation.py
	$(BIN)/python benchmarks/bench_training.py
