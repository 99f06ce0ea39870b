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

# the package with what the demo draws with (no pip upgrade: the venv's own pip installs these)
$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[plot]' -c constraints-cpu.txt
	touch $@

# what the tests need beside it, Norse for the NIR interchange tests without its torchvision
# dependency (norse.torch does not import it, and it would pull another torch build)
$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]' -c constraints-cpu.txt
	$(BIN)/pip install -q --no-deps 'norse==1.1.0'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/softlif demo

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks scripts examples

test: lint
	$(BIN)/softlif machine
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/pip install -q -e '.[bench]' -c constraints-cpu.txt
	$(BIN)/python benchmarks/bench_simulation.py
	$(BIN)/python benchmarks/bench_training.py
