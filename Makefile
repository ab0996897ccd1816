# The README's two commands: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-all lint lock clean

setup: $(STAMP)
	$(PY) -m hw5jax.data fetch

# The exact stack of requirements.lock, then hw5jax itself (editable, no dependencies);
# redone only when the lock or pyproject.toml changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: setup
	$(PY) -m experiments.optim_sweep

lint: $(STAMP)
	$(VENV)/bin/ruff format --check hw5jax experiments tests
	$(VENV)/bin/ruff check hw5jax experiments tests
	$(VENV)/bin/mypy

# The fast tier (about 3 minutes on 2 cores).
test: setup lint
	$(PY) -m pytest -m "not slow"

# Everything: the fast tier and the long one (end-to-end runs, SIGKILL resume, hostile
# inputs, several processes).
test-all: setup lint
	$(PY) -m pytest

# Rewrite requirements.lock from the environment (after changing pyproject.toml's ranges:
# `pip install -e '.[test]'` into .venv first).
lock: $(STAMP)
	{ sed -n '/^#/p' requirements.lock; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^hw5jax' | sed 's/+cpu$$//'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
