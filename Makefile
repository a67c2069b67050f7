# dwn-hw: `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONUNBUFFERED := 1
DEMO_DIR ?= demo_out
JOBS ?= 2

.PHONY: demo test test-slow test-all venv clean mnist

venv: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml constraints.txt scripts/setup_venv.sh
	scripts/setup_venv.sh

demo: venv
	$(PY) scripts/demo.py --out $(DEMO_DIR)

# MNIST headline models (docs/results.md); resumable, long: see scripts/mnist.py --help.
mnist: venv
	$(PY) scripts/mnist.py $(MNIST_ARGS)

test: venv
	@start=$$(date +%s); \
	$(PY) -m pytest -n $(JOBS) --dist loadfile -q; rc=$$?; \
	echo "fast test set: $$(( $$(date +%s) - start )) s"; exit $$rc

test-slow: venv
	$(PY) -m pytest -n $(JOBS) --dist loadfile -q -m slow

test-all: venv
	$(PY) -m pytest -n $(JOBS) --dist loadfile -q -m ''

clean:
	rm -rf $(DEMO_DIR) build dist *.egg-info .pytest_cache
