# Two entry points for a fresh machine:  `make demo`  and  `make test`.
# Each creates .venv, installs the system (apt) and Python packages it needs, then runs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := libusb-1.0-0 libgl1 libgomp1 libglib2.0-0
# The CPU build of torch; the package itself only asks for torch>=2.4 in its `sam` extra.
TORCH_PIN := torch==2.13.0

.PHONY: demo test test-fast lint system venv clean

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q "$(TORCH_PIN)"
	$(BIN)/pip install -q -e ".[dev,sam,sim]"
	# graspnetAPI's own GraspGroup checks our export; its pinned deps (old numpy, autolab) are not needed for that
	$(BIN)/pip install -q --no-deps graspnetAPI
	touch $@ $(VENV)/.installed-demo

demo: system $(VENV)/.installed-demo
	$(BIN)/graspseg demo

test: system $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

test-fast: system $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check graspseg calibration tests

clean:
	rm -rf $(VENV) build *.egg-info
