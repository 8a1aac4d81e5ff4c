# Every routine action of the project. `make demo` and `make test` work on a fresh machine:
# they create .venv and install the project into it first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export FRAUD_DATA_DIR ?= $(CURDIR)/data

.PHONY: install demo test lint format dev serve bench screenshots clean

# Recipes of the install and the demo are not echoed: the demo's output is its own (at most 60
# lines, README "Budgets").
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check uv
	@echo "installing the project into $(VENV) (uv)"
	@$(BIN)/uv pip install -q --python $(PY) -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

demo: install
	@mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml 2>/dev/null || true
	@$(BIN)/fraud demo

test: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

dev: install
	mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml 2>/dev/null || true
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

serve: install
	$(BIN)/fraud serve

screenshots: install  # after `make demo`: docs/*.png of the UI and /schema, in headless Chromium
	$(PY) docs/screenshots.py

bench: install
	$(PY) bench/generator.py
	$(PY) bench/features.py --orders 1200000
	$(PY) bench/online_features.py
	$(PY) bench/train.py
	$(PY) bench/online_store.py
	$(PY) bench/serving.py

clean:
	rm -rf $(VENV) .dagster data .pytest_cache
