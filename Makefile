# The verbs a newcomer expects. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Hashed, universal locks: every file of each pinned version, so the dev venv (CPython 3.11, x86_64)
# and the Lambda bundle (cp313, arm64 or x86_64) both install from them with --require-hashes.
LOCK := $(abspath $(BIN))/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 --no-header
# $(1): a tree holding the inputs; the runtime lock first, then the dev lock constrained by it.
# installer.lock: uv alone, at the lock's pin, the one thing a venv's own pip installs (no resolving);
# build.lock: the wheel's build backend at the lock's pin, for `uv build --require-hashes` on a host.
compile_locks = cd $(1) \
	&& $(LOCK) -c constraints.txt -o lambda_fn/requirements.lock lambda_fn/requirements.txt \
	&& $(LOCK) -c lambda_fn/requirements.lock -o requirements.lock requirements.txt \
	&& echo uv | $(LOCK) -c requirements.lock -o installer.lock - \
	&& echo setuptools | $(LOCK) -c requirements.lock -o build.lock -

NODE_STAMP := node_modules/.installed
# CDK offline: no telemetry, no notices; jsii's end-of-life notice for Node 20 silenced.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
CDK := node_modules/.bin/cdk
# e.g. make synth CDK_ARGS="-c clusterName=prod -c namespaces=team-*"
CDK_ARGS ?=
# e.g. make rbac CONTEXT="clusterName=prod namespaces=team-* serviceAccounts=default"
CONTEXT ?=
# Recipes read these two from the environment and split them into words at spaces (`read -a`, globbing
# off): quotes inside are kept, so JSON survives (CONTEXT='clusters=[{"name":"onprem",...}]'), and a
# space inside a value is written `\ ` (namespaceSelector=env\ in\ (dev,prod)). $(CDK_ARGS) would hand
# the shell the text to parse again, and strip every quote inside.
export CDK_ARGS CONTEXT
split_words = set -f; read -a $(1) <<<"$$$(2)";
# e.g. make rbac CLUSTER=onprem CONTEXT="clusters=prod,onprem ..." (default: the first cluster)
CLUSTER ?=

.PHONY: demo test test-apiserver test-compat e2e bootstrap lint lock lock-check format unit integration synth deploy destroy install rbac apply remove asset bench bench-targeting bench-apiserver soak clean

# Set-up talks on stderr only, so that `make rbac ... | kubectl apply -f -` gets nothing but the manifest.
# Only the committed locks drive the install: make never regenerates them behind your back.
# The install is the lock, exactly: the venv's pip (whatever version venv ships) installs only the hashed
# uv pin, with --no-deps, so it resolves nothing; `uv pip sync` then makes the venv equal to the lock,
# resolving nothing either. aws-cdk-lib and aws-cdk.cloud-assembly-schema both ship
# aws_cdk/cloud_assembly_schema/__init__.py and the last one written wins; jsii needs aws-cdk-lib's,
# so aws-cdk-lib is written again, alone, last (tests/infra/test_install.py fails on the other copy).
UV = $(BIN)/uv pip
$(STAMP): requirements.lock lambda_fn/requirements.lock installer.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3" >&2; exit 2; }
	@echo "setting up $(VENV) (first run: a few minutes)" >&2
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r installer.lock >&2
	@$(UV) sync --quiet --python $(BIN)/python --require-hashes requirements.lock >&2
	@$(UV) install --quiet --python $(BIN)/python --no-deps --require-hashes --reinstall-package aws-cdk-lib -r requirements.lock >&2
	@touch $@

demo: $(STAMP) ## run the real handler against moto + the local Kubernetes API, twice
	$(BIN)/python -m demo

test: lint ## lint, types, import contracts, then the whole suite
	$(BIN)/pytest --cov --cov-report=term

test-apiserver: $(STAMP) ## only the real kube-apiserver tier (builds it with Go on first use)
	$(BIN)/pytest -m apiserver

test-compat: $(STAMP) ## the kube-apiserver tier on every version apiserver/ builds, as a matrix (for releases)
	$(BIN)/python -m tests.compat_matrix

e2e: $(STAMP) $(NODE_STAMP) ## cdk deploy into moto, then the deployed zip under the Lambda emulator
	$(BIN)/pytest -m e2e -s tests/e2e

lint: $(STAMP) lock-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

lock: $(STAMP) ## after editing requirements.txt, lambda_fn/requirements.txt or constraints.txt
	$(call compile_locks,.)

lock-check: $(STAMP) ## fail when a committed lock no longer matches its inputs
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir -p "$$tmp/lambda_fn" \
	  && cp requirements.txt constraints.txt *.lock "$$tmp/" \
	  && cp lambda_fn/requirements.txt lambda_fn/requirements.lock "$$tmp/lambda_fn/" \
	  && ( $(call compile_locks,"$$tmp") ) \
	  && diff -u lambda_fn/requirements.lock "$$tmp/lambda_fn/requirements.lock" \
	  && diff -u requirements.lock "$$tmp/requirements.lock" \
	  && diff -u installer.lock "$$tmp/installer.lock" \
	  && diff -u build.lock "$$tmp/build.lock" \
	  || { echo "stale lock: run make lock and commit the four .lock files" >&2; exit 1; }

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(NODE_STAMP): package.json package-lock.json
	@npm ci --no-audit --no-fund --silent >&2
	@touch $@

synth: $(STAMP) $(NODE_STAMP) ## cdk synth offline (bundles the function), cdk-nag, cfn-lint; the template stays in cdk.out/
	@# A template or manifest of an earlier synth (another stackName) would be linted and listed as this one's.
	@rm -f cdk.out/*.template.json cdk.out/rbac*.yaml
	$(call split_words,args,CDK_ARGS) $(CDK) synth --quiet --no-notices "$${args[@]}"
	$(BIN)/cfn-lint --config-file .cfnlintrc.yaml cdk.out/*.template.json
	@echo "templates: $$(cd cdk.out && ls *.template.json | tr '\n' ' '); Kubernetes manifests: $$(cd cdk.out && ls rbac*.yaml | tr '\n' ' ')(or: make rbac)"

bootstrap: $(STAMP) $(NODE_STAMP) ## cdk bootstrap (once per account and region) with the pinned CLI
	$(call split_words,args,CDK_ARGS) $(CDK) bootstrap --no-notices "$${args[@]}"

# One stack per account and region the clusters name (docs/deploy.md): every one of them, or STACKS="<names>".
STACKS ?=
deploy: $(STAMP) $(NODE_STAMP) ## cdk deploy of every stack (or STACKS="..."), with the pinned CLI
	$(call split_words,args,CDK_ARGS) $(call split_words,stacks,STACKS) \
	  $(CDK) deploy --no-notices $${stacks[@]:---all} "$${args[@]}"

destroy: $(STAMP) $(NODE_STAMP) ## cdk destroy of every stack (or STACKS="..."), with the pinned CLI (the same CDK_ARGS as the deploy)
	$(call split_words,args,CDK_ARGS) $(call split_words,stacks,STACKS) \
	  $(CDK) destroy --no-notices $${stacks[@]:---all} "$${args[@]}"

# e.g. sudo make install (PREFIX=/opt/ecr-token-refresher BINDIR=/usr/local/bin): needs only python3 >= 3.11
install: ## the CLI on a host: a root-owned venv holding exactly lambda_fn/requirements.lock, then this package
	$(if $(filter command line environment,$(origin PYTHON)),PYTHON=$(PYTHON)) deploy/host/install.sh

rbac: $(STAMP) ## print a cluster's RBAC + admission policy (CLUSTER=name of several; HOST=1 for a cluster served by the CLI)
	@$(call split_words,context,CONTEXT) $(BIN)/python -m infra.rbac $(if $(CLUSTER),--cluster $(CLUSTER)) $(if $(HOST),--host) "$${context[@]}"

# e.g. make apply CONTEXT="clusterName=prod namespaces=team-a,team-b" KUBECTL_ARGS="--context prod"
KUBECTL_ARGS ?=
export KUBECTL_ARGS
apply: $(STAMP) ## kubectl apply a cluster's manifest (policies first) and delete what it no longer renders
	@$(call split_words,context,CONTEXT) $(call split_words,kubectl,KUBECTL_ARGS) \
	  $(BIN)/python -m infra.apply $(if $(CLUSTER),--cluster $(CLUSTER)) $(if $(HOST),--host) $${kubectl[@]/#/--kubectl-arg=} "$${context[@]}"

remove: $(STAMP) ## delete every object of a cluster's manifest from the cluster (grants first, policies last)
	@$(call split_words,context,CONTEXT) $(call split_words,kubectl,KUBECTL_ARGS) \
	  $(BIN)/python -m infra.apply --delete $(if $(CLUSTER),--cluster $(CLUSTER)) $(if $(HOST),--host) $${kubectl[@]/#/--kubectl-arg=} "$${context[@]}"

asset: $(STAMP) ## the Lambda asset's size and cold import time, trimmed or not
	$(BIN)/python -m bench.asset_footprint

bench: $(STAMP) ## the refresher vs the kubectl cron recipe, 100 to 5,000 namespaces (~23 min)
	$(BIN)/python -m bench

bench-targeting: $(STAMP) ## bytes a steady-state run reads for 100 targets in 5,000 and 20,000 namespaces, by targeting (~2 min)
	$(BIN)/python -m bench.targeting_cost

bench-apiserver: $(STAMP) ## the real kube-apiserver, its manifest and identity: 1,000 to 20,000 namespaces (~10 min)
	$(BIN)/python -m bench.apiserver_scale

soak: $(STAMP) ## 500 namespaces x 30 runs with random faults; invariants after every run
	$(BIN)/python -m bench.soak

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration tests/localkube

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage cdk.out
