# The README's two commands: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-all lint clean

setup: $(STAMP)
	$(PY) -m hw5jax.data fetch

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: setup
	$(PY) -m experiments.optim_sweep

lint: $(STAMP)
	$(VENV)/bin/ruff check hw5jax experiments tests

test: setup lint
	$(PY) -m pytest -m "not slow"

# Everything, including the long real-data runs.
test-all: setup lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
