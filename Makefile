# The two commands of the README: `make lab` and `make test`. Both share `make install`.
PYTHON ?= python3.11
VENV   ?= .venv
LAB    ?= flowers-resnet50-pytorch
PROFILE ?= workshop
BIN    := $(VENV)/bin
# The venv first on PATH: kernels, msrun and torchrun start `python` from PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install lab test jupyter bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "labkit needs Python 3.11: set PYTHON=/path/to/python3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

lab: install
	$(BIN)/labkit run $(LAB) --profile $(PROFILE)

test: install
	$(BIN)/python -m pytest

jupyter: install
	LABKIT_HOME=$(CURDIR)/workspace $(BIN)/jupyter lab notebooks/

bench: install
	$(BIN)/python bench/bench_data.py

clean:
	rm -rf $(VENV) runs
