# The README's two commands: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-all lint lock clean reproduce promote report docs

setup: $(STAMP)
	$(PY) -m hw5jax.data fetch
	$(PY) -m hw5jax.kernels.build

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

# The default run of every experiment into runs/reproduce/<entry>/ (the commands of
# hw5jax/runs/results.py's ENTRIES). Each is resumable, or skipped once finished, so an
# interrupted `make reproduce` continues where it stopped. Hours on 2 cores (the best CNN
# recipe's 5 seeds most of it).
REPRO := runs/reproduce
PHOTOS := sample:grace_hopper sample:chelsea sample:coffee sample:astronaut

reproduce: setup weights/alexnet
	$(PY) -m experiments.optim_sweep --out $(REPRO)/optim_sweep
	$(PY) -m experiments.batchnorm --out $(REPRO)/batchnorm
	$(PY) -m experiments.cnn_mnist --recipe homework --out $(REPRO)/cnn_homework
	$(PY) -m experiments.cnn_mnist --recipe best --seeds 5 --out $(REPRO)/cnn_best
	test -f $(REPRO)/cnn_ensemble/results.json || \
	  $(PY) -m experiments.cnn_eval $(REPRO)/cnn_best --ensemble --out $(REPRO)/cnn_ensemble
	$(PY) -m experiments.cnn_torch --out $(REPRO)/cnn_torch
	test -f $(REPRO)/theory_checks/results.json || \
	  $(PY) -m experiments.theory_checks --out $(REPRO)/theory_checks
	test -f $(REPRO)/alexnet_readout/results.json || \
	  $(PY) -m experiments.alexnet_readout $(PHOTOS) --out $(REPRO)/alexnet_readout
	test -f $(REPRO)/benchmark/results.json || \
	  $(PY) -m experiments.benchmark --out $(REPRO)/benchmark
	@echo "all finished: 'make promote' copies them into results/"

# Without torchvision's pretrained file (weights/README.md), a random-weight stand-in.
weights/alexnet:
	$(PY) -m experiments.convert_alexnet --make-random-reference weights/alexnet_random.pth
	$(PY) -m experiments.convert_alexnet weights/alexnet_random.pth --out weights/alexnet

# runs/reproduce/* -> results/ (with provenance.json), then the README's and docs' blocks.
promote: setup
	$(PY) -m experiments.report --promote $(REPRO)/*
	$(MAKE) docs

# The answer key, from results/: runs/report/<UTC time>/index.html.
report: setup
	$(PY) -m experiments.report

# The README's and docs' result blocks, rewritten from results/.
docs: setup
	$(PY) -m experiments.report --refresh-docs

# Rewrite requirements.lock from the environment (after changing pyproject.toml's ranges:
# `pip install -e '.[test]'` into .venv first).
lock: $(STAMP)
	{ sed -n '/^#/p' requirements.lock; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^hw5jax' | sed 's/+cpu$$//'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
