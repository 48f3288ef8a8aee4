# The verbs a newcomer expects. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

NODE_STAMP := node_modules/.installed
# CDK offline: no telemetry, no notices; jsii's end-of-life notice for Node 20 silenced.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
CDK := node_modules/.bin/cdk
# e.g. make synth CDK_ARGS="-c clusterName=prod -c namespaces=team-*"
CDK_ARGS ?=
# e.g. make rbac CONTEXT="clusterName=prod namespaces=team-* serviceAccounts=default"
CONTEXT ?=

.PHONY: demo test test-apiserver lint format unit integration synth deploy rbac asset bench soak clean

$(STAMP): requirements.txt constraints.txt lambda_fn/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

demo: $(STAMP) ## run the real handler against moto + the local Kubernetes API, twice
	$(BIN)/python -m demo

test: lint ## lint, types, import contracts, then the whole suite
	$(BIN)/pytest --cov --cov-report=term

test-apiserver: $(STAMP) ## only the real kube-apiserver tier (builds it with Go on first use)
	$(BIN)/pytest -m apiserver

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

synth: $(STAMP) $(NODE_STAMP) ## cdk synth offline (bundles the function), cdk-nag, cfn-lint
	$(CDK) synth --no-notices $(CDK_ARGS)
	$(BIN)/cfn-lint --config-file .cfnlintrc.yaml cdk.out/*.template.json
	@echo "RBAC manifest: cdk.out/rbac.yaml (or: make rbac)"

deploy: $(STAMP) $(NODE_STAMP) ## cdk deploy with the locally installed CLI
	$(CDK) deploy --no-notices $(CDK_ARGS)

rbac: $(STAMP) ## print the RBAC manifest for kubectl apply -f -
	@$(BIN)/python -m infra.rbac $(CONTEXT)

asset: $(STAMP) ## the Lambda asset's size and cold import time, trimmed or not
	$(BIN)/python -m bench.asset_footprint

bench: $(STAMP) ## the refresher vs the kubectl cron recipe, 10 to 5,000 namespaces (~8 min)
	$(BIN)/python -m bench

soak: $(STAMP) ## 500 namespaces x 30 runs with random faults; invariants after every run
	$(BIN)/python -m bench.soak

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration tests/localkube

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage cdk.out
