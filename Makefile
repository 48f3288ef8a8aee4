# The verbs a newcomer expects. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format unit integration clean

$(STAMP): requirements.txt constraints.txt lambda_fn/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

demo: $(STAMP) ## run the real handler against moto + the local Kubernetes API, twice
	$(BIN)/python -m demo

test: lint ## lint, types, import contracts, then the whole suite
	$(BIN)/pytest --cov --cov-report=term

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration tests/localkube

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage cdk.out
