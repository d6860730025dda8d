# t2i: `make demo` and `make test` work on a fresh machine with only Python installed.
PYTHON ?= python3
VENV ?= .venv
# A CPU machine must not pull gigabytes of CUDA wheels: install torch first, from this spec.
# Override for a GPU box, e.g. make TORCH_SPEC=torch TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cu124
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# The torch a venv was installed with is recorded beside it ($(VENV)-torch-spec, -torch-index): a TORCH_SPEC or
# TORCH_INDEX given to make (or in the environment) that differs installs torch again; without them, the recorded
# ones stay (a GPU venv is not put back to the CPU build by a plain `make test`). A deleted venv takes its record
# with it: the next one is installed as given, or with the defaults above.
TORCH_GIVEN := $(filter command line environment,$(origin TORCH_SPEC) $(origin TORCH_INDEX))
ifneq ($(wildcard $(VENV)),)
ifeq ($(filter command line environment,$(origin TORCH_SPEC)),)
TORCH_SPEC := $(or $(shell cat $(VENV)-torch-spec 2>/dev/null),$(TORCH_SPEC))
endif
ifeq ($(filter command line environment,$(origin TORCH_INDEX)),)
TORCH_INDEX := $(if $(wildcard $(VENV)-torch-index),$(shell cat $(VENV)-torch-index),$(TORCH_INDEX))
endif
endif
TORCH_WANT := $(strip $(TORCH_SPEC) $(TORCH_INDEX))
TORCH_RECORD := $(VENV)-torch-spec

.PHONY: help install demo lint test weights weights-gpu bench FORCE

help:
	@echo "make demo     create $(VENV) if missing, install, run: t2i generate \"a red bird\""
	@echo "make test     the whole test suite (PYTEST_ARGS=... for a part); make lint: ruff"
	@echo "make weights  the 2-hour CPU recipe (runs/default/weights); make weights-gpu: the shipped one's"
	@echo "TORCH_SPEC=$(TORCH_SPEC) TORCH_INDEX=$(TORCH_INDEX) PYTHON=$(PYTHON) (override any of them)"

# (a venv installed before the record existed, with nothing given, is recorded as it is: not installed again)
$(TORCH_RECORD): FORCE
	@if [ ! -f $@ ] && [ -f $(BIN)/.installed ] && [ -z "$(TORCH_GIVEN)" ]; then \
		echo "$(TORCH_SPEC)" > $@; echo "$(TORCH_INDEX)" > $(VENV)-torch-index; touch -r $(BIN)/.installed $@; \
	elif [ "$$(cat $@ 2>/dev/null) $$(cat $(VENV)-torch-index 2>/dev/null)" != "$(TORCH_SPEC) $(TORCH_INDEX)" ]; then \
		echo "$(TORCH_SPEC)" > $@; echo "$(TORCH_INDEX)" > $(VENV)-torch-index; fi

# A venv whose Python is gone or older than 3.10 (another machine's, a removed interpreter) is made again.
$(BIN)/.installed: pyproject.toml $(TORCH_RECORD)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "t2i needs Python 3.10 or later: make PYTHON=python3.12 ...")'
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ -f $(BIN)/.torch-spec ] && [ "$$(cat $(BIN)/.torch-spec)" != "$(TORCH_WANT)" ]; then \
		$(BIN)/python -m pip uninstall -q -y torch; fi
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(TORCH_INDEX)
	@echo "$(TORCH_WANT)" > $(BIN)/.torch-spec
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $@

# (checked each time: a venv whose interpreter has gone is installed again, not used)
install:
	@$(BIN)/python -c '' 2>/dev/null || rm -f $(BIN)/.installed
	@$(MAKE) --no-print-directory $(BIN)/.installed

FORCE:

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
