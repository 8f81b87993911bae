# The two commands of the README: `make lab` and `make test`. Both share `make install`.
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
# The clone may lie in a folder whose name has spaces or other letters than ASCII: Make's path
# functions (abspath, wildcard) would split such a name at its spaces, so a path is made absolute
# by hand and every recipe quotes it.
absolute = $(if $(filter /%,$(1)),$(1),$(CURDIR)/$(1))
PIP_FROM := $(if $(WHEELHOUSE),--no-index --find-links "$(call absolute,$(WHEELHOUSE))",)
BIN    := $(VENV)/bin
# The venv first on PATH: kernels, msrun and torchrun start `python` from PATH.
export PATH := $(call absolute,$(BIN)):$(PATH)

# A laptop without AVX-512 for PyTorch and oneDNN (their kernels limited to AVX2), for the tests
# whose numbers depend on the kernels: conversion and serving. ONNX Runtime reads the CPU itself
# and ignores these variables. CI runs it after `make test`.
AVX2_ONLY := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2

.PHONY: install lab test test-fast test-avx2 fuzz lint jupyter tensorboard hub twins bench docs wheelhouse clean

install: $(VENV)/.installed

# The Pythons every pinned package publishes wheels for: MindSpore 2.7.2 has 3.9-3.12, PyTorch
# 2.13.0 3.10-3.14, pandas 3 and scipy 1.17 start at 3.11 -- so 3.11 or 3.12 (pyproject.toml's
# requires-python). The first of python3.11, python3.12 on PATH, unless PYTHON says which.
PYTHON ?= $(firstword $(shell command -v python3.11 python3.12 2>/dev/null) python3.11)
GET_PYTHON := get Python 3.11 or 3.12 with its venv module -- Ubuntu 24.04: sudo apt install python3.12-venv; Debian 12: sudo apt install python3.11-venv; Ubuntu 22.04 and its WSL2: sudo add-apt-repository ppa:deadsnakes/ppa and sudo apt install python3.11-venv; macOS: brew install python@3.12; or conda env create -f environment.yml -- then make PYTHON=/path/to/python3.12

# On Linux, PyPI's torch is the CUDA build: several GB of CUDA libraries a CPU lab never loads.
# PyTorch's CPU index has the same version without them, so install takes torch from there first,
# unless pip has its own index or wheel folder configured (a room's mirror, a wheelhouse), which
# then decides. TORCH_INDEX= keeps PyPI's build (for a GPU); TORCH_INDEX=URL a mirror of the CPU index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# (PIP_CONFIG_FILE=/dev/null: pip reads no configuration file, and neither does this check.
# The files as shell words, quoted: a home folder's name may have spaces.)
PIP_CONFIG_FILES ?= $(if $(filter /dev/null,$(PIP_CONFIG_FILE)),,/etc/pip.conf /etc/xdg/pip/pip.conf \
	"$(HOME)/.config/pip/pip.conf" "$(HOME)/.pip/pip.conf" $(if $(PIP_CONFIG_FILE),"$(PIP_CONFIG_FILE)"))
PIP_HAS_INDEX = $(WHEELHOUSE)$(PIP_INDEX_URL)$(PIP_EXTRA_INDEX_URL)$(PIP_FIND_LINKS)$(shell \
	grep -lsE '^ *(index-url|extra-index-url|find-links)' $(PIP_CONFIG_FILES) </dev/null)
TORCH_CPU = $(and $(TORCH_INDEX),$(filter Linux,$(shell uname -s)),$(if $(PIP_HAS_INDEX),,cpu))
TORCH_PIN = $(shell sed -n 's/^ *"\(torch==[^"]*\)",*$$/\1/p' pyproject.toml)
NO_TORCH_CPU := set TORCH_INDEX to a mirror of it, TORCH_INDEX= for PyPI's CUDA build, or WHEELHOUSE=dir (docs/WORKSHOP.md)

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "labkit needs Python 3.11 or 3.12, and $(PYTHON) is not on PATH: $(GET_PYTHON)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' || \
		{ echo "labkit needs Python 3.11 or 3.12, and $(PYTHON) is $$($(PYTHON) -V 2>&1): $(GET_PYTHON)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
		{ echo "$(PYTHON) has no venv module (or no ensurepip): $(GET_PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_CPU),$(BIN)/python -m pip install --quiet --index-url $(TORCH_INDEX) '$(TORCH_PIN)' || \
		{ echo "PyTorch's CPU build ($(TORCH_PIN)) is not at $(TORCH_INDEX): $(NO_TORCH_CPU)"; exit 1; })
	$(BIN)/python -m pip install --quiet $(PIP_FROM) -e '.[dev]'
	touch $@

lab: install
	$(BIN)/labkit run $(LAB) --profile $(PROFILE) --lang $(LESSONS)

# JupyterHub's proxy for a room on one server (Node.js, from npm, pinned by docs/hub/package-lock.json).
# The test suite runs a real hub with it where npm is there (tests/test_hub.py says when it cannot).
HUB_PROXY := docs/hub/node_modules/.bin/configurable-http-proxy
NPM := $(shell command -v npm 2>/dev/null)
$(HUB_PROXY): docs/hub/package.json docs/hub/package-lock.json
	$(if $(NPM),,@echo "the hub's proxy comes from npm: install Node.js 20 or later (Debian: apt install npm)"; exit 1)
	cd docs/hub && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install $(if $(NPM),$(HUB_PROXY))
	$(BIN)/python -m pytest

# The loop while editing: no training, no labs, no notebooks, no service processes (the tests
# marked `slow`; tests/conftest.py marks every test whose fixtures train). Minutes, not half an hour.
test-fast: install
	$(BIN)/python -m pytest -m "not slow" tests

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
	LABKIT_HOME="$(CURDIR)/workspace" $(BIN)/jupyter lab $(LESSON_DIR) \
		$(if $(filter-out en,$(LESSONS)),--LabApp.app_settings_dir="$(CURDIR)/$(LESSON_DIR)/.jupyterlab") $(JUPYTER_ARGS)

# TensorBoard over every job of the workspace (later ones too); `labkit tensorboard stop` ends it
tensorboard: install
	LABKIT_HOME="$(or $(LABKIT_HOME),$(CURDIR)/workspace)" $(BIN)/labkit tensorboard

# A workshop room on one server, as root there (docs/HUB.md): JupyterHub from the recipe in docs/hub,
# its state (database, cookie secret) in HUB_DIR. LESSONS=zh-CN for a room that reads Chinese.
HUB_DIR ?= /var/lib/labkit-hub
hub: install $(HUB_PROXY)
	mkdir -p $(HUB_DIR)
	cd "$(HUB_DIR)" && LABKIT_DIR="$(CURDIR)" LABKIT_LESSONS=$(LESSONS) "$(call absolute,$(BIN))/jupyterhub" \
		-f "$(CURDIR)/docs/hub/jupyterhub_config.py"

# After changing an English lesson: copy its code into the translations, mark the prose to translate.
twins: install
	$(BIN)/python -m labkit.lessons sync

bench: install
	$(BIN)/python bench/bench_$(BENCH).py

# The docs' measured figures (marked regions), written again from bench/results (bench/docs.py)
docs: install
	$(BIN)/python bench/docs.py

# Every dependency as a wheel in wheelhouse/, for laptops without a network (docs/WORKSHOP.md).
wheelhouse: install
	$(if $(TORCH_CPU),$(BIN)/python -m pip download --quiet --no-deps --dest wheelhouse --index-url $(TORCH_INDEX) \
		'$(TORCH_PIN)' || { echo "PyTorch's CPU build ($(TORCH_PIN)) is not at $(TORCH_INDEX): $(NO_TORCH_CPU)"; exit 1; })
	$(BIN)/python -m pip download --quiet --dest wheelhouse $(if $(TORCH_CPU),--find-links wheelhouse) \
		pip setuptools wheel '.[dev]'
	rm -f wheelhouse/labkit-*

clean:
	rm -rf $(VENV) runs
