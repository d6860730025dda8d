# t2i: `make demo` and `make test` work on a fresh machine with only Python installed.
PYTHON ?= python3
VENV ?= .venv
# A CPU machine must not pull gigabytes of CUDA wheels: install torch first, from this spec.
# Override for a GPU box, e.g. make TORCH_SPEC=torch TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cu124
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install demo lint test weights weights-gpu bench

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(TORCH_INDEX)
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/t2i generate "a red bird"

# ruff's rule set and why: pyproject.toml [tool.ruff.lint].
lint: install
	$(BIN)/ruff check src tests bench

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Train a model from scratch on the procedural world, evaluate it, export it to runs/PRESET/weights (the shipped
# weights/ stay as they are unless WEIGHTS_ARGS holds --to weights; see weights/README.md).
# `make weights`: the CPU recipe (preset default, 64 px), inside 2 hours on 2 cores: runs/default/weights.
WEIGHTS_ARGS ?=
weights: install
	$(BIN)/python bench/make_weights.py $(WEIGHTS_ARGS)

# `make weights-gpu`: the recipe of the shipped weights (preset large, 128 px), about 14 minutes of training on
# one H100 (weights/README.md): runs/large/weights.
GPU_WEIGHTS_ARGS ?= --preset large --device cuda --workers 11 --side-workers 4 --parallel
weights-gpu: install
	$(BIN)/python bench/make_weights.py $(GPU_WEIGHTS_ARGS) $(WEIGHTS_ARGS)

bench: install
	$(BIN)/python bench/bench_decode.py
