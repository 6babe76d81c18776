# hardneg: every target builds the virtual environment first (idempotent, stamp-based).
PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_WAIT_POLICY ?= PASSIVE
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

DATASET ?= MUTAG
PROFILE ?= quick

.PHONY: setup test lint graph graph-all bench-loss tables clean

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q

bench-loss: $(STAMP)
	$(PY) -m benchmarks.loss_speed

clean:
	rm -rf .cache __pycache__ .pytest_cache
