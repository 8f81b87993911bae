# The two commands of the README: `make lab` and `make test`. Both share `make install`.
PYTHON ?= python3.11
VENV   ?= .venv
LAB    ?= flowers-resnet50-pytorch
PROFILE ?= workshop
BENCH  ?= data
# The lessons' language: en, or zh-CN (notebooks/zh-CN/: Chinese prose and figures, JupyterLab in Chinese)
LESSONS ?= en
# e.g. JUPYTER_ARGS=--allow-root when running as root (README troubleshooting)
JUPYTER_ARGS ?=
# WHEELHOUSE=dir installs offline from a folder made by `make wheelhouse` (docs/WORKSHOP.md)
WHEELHOUSE ?=
PIP_FROM := $(if $(WHEELHOUSE),--no-index --find-links $(abspath $(WHEELHOUSE)),)
BIN    := $(VENV)/bin
# The venv first on PATH: kernels, msrun and torchrun start `python` from PATH.
export PATH := $(abspath $(BIN)):$(PATH)

# A laptop without AVX-512 for PyTorch and oneDNN (their kernels limited to AVX2), for the tests
# whose numbers depend on the kernels: conversion and serving. ONNX Runtime reads the CPU itself
# and ignores these variables. CI runs it after `make test`.
AVX2_ONLY := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2

.PHONY: install lab test test-avx2 fuzz lint jupyter twins bench wheelhouse clean

install: $(VENV)/.installed

# The pinned engines (MindSpore 2.7.2 with PyTorch 2.13.0) are installed together on Python 3.11
# only. Before anything downloads: that Python, with its venv module, or how to get them.
GET_PYTHON := get Python 3.11 with its venv module -- Debian 12: sudo apt install python3.11-venv; Ubuntu 22.04/24.04 and WSL2: sudo add-apt-repository ppa:deadsnakes/ppa and sudo apt install python3.11-venv; macOS: brew install python@3.11; or conda env create -f environment.yml -- then make PYTHON=/path/to/python3.11

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "labkit needs Python 3.11, and $(PYTHON) is not on PATH: $(GET_PYTHON)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "labkit needs Python 3.11, and $(PYTHON) is $$($(PYTHON) -V 2>&1): $(GET_PYTHON)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
		{ echo "$(PYTHON) has no venv module (or no ensurepip): $(GET_PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIP_FROM) -e '.[dev]'
	touch $@

lab: install
	$(BIN)/labkit run $(LAB) --profile $(PROFILE) --lang $(LESSONS)

test: install
	$(BIN)/python -m pytest

test-avx2: install
	$(AVX2_ONLY) $(BIN)/python -m pytest tests/test_convert.py tests/test_serve.py tests/test_reliability.py

# pyflakes' and pycodestyle's checks (ruff; the rules in pyproject.toml). CI runs it.
lint: install
	$(BIN)/ruff check labkit tests bench

# The fuzzer of files from outside (packs, manifests, records) with more cases than CI's 60 a test
fuzz: install
	LABKIT_FUZZ_EXAMPLES=$(or $(EXAMPLES),1000) $(BIN)/python -m pytest tests/test_fuzz.py

# A translated lesson folder holds .jupyterlab/overrides.json: JupyterLab's interface in that
# language by default (its language pack is installed; Settings > Language switches back).
LESSON_DIR := notebooks$(if $(filter-out en,$(LESSONS)),/$(LESSONS))
jupyter: install
	LABKIT_HOME=$(CURDIR)/workspace $(BIN)/jupyter lab $(LESSON_DIR) \
		$(if $(filter-out en,$(LESSONS)),--LabApp.app_settings_dir=$(CURDIR)/$(LESSON_DIR)/.jupyterlab) $(JUPYTER_ARGS)

# After changing an English lesson: copy its code into the translations, mark the prose to translate.
twins: install
	$(BIN)/python -m labkit.lessons sync

bench: install
	$(BIN)/python bench/bench_$(BENCH).py

# Every dependency as a wheel in wheelhouse/, for laptops without a network (docs/WORKSHOP.md).
wheelhouse: install
	$(BIN)/python -m pip download --quiet --dest wheelhouse pip setuptools wheel '.[dev]'
	rm -f wheelhouse/labkit-*

clean:
	rm -rf $(VENV) runs
