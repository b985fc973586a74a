# parcelhub — the Makefile is the interface. `make demo` and `make test` set themselves up.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip prints a warning per missing local index directory on these machines: keep the output readable
QUIET_PIP := 2>&1 | { grep -v '^WARNING: Location' || true; }
.DEFAULT_GOAL := help

# Python 3.13 (the Lambda runtime) where pyenv has it, else the newest python3 >= 3.11.
PYTHON ?= $(shell for p in $$HOME/.pyenv/versions/3.13*/bin/python3 python3.13 python3.12 python3.11 python3; do \
	  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SCAN_VENV := .venv-scan
PYTEST_WORKERS ?= auto

.PHONY: help
help:
	@echo "make demo   - run the whole system locally and watch a day of shipping (sets itself up)"
	@echo "make test   - lint + every test tier (sets itself up)"
	@echo "make local  - the local stack in the foreground (moto + functions + carrier sandboxes)"
	@echo "make lint   - ruff, mypy, bandit, checkov, cfn-lint, sam validate --lint, drift of OpenAPI, event schemas, docs/security.md"
	@echo "make bench  - cost, cold start, hot path and stall-sweep benchmarks"
	@echo "make build  - sam build (finds python3.13 through pyenv)"
	@echo "make backtest [HISTORY=file.csv] - delivery-date estimates against two baselines on a delivered history"
	@echo "make report - carrier scorecards as one HTML file (API=<base url> KEY=<api key>; default: the running local stack)"

$(STAMP): requirements/dev.lock pyproject.toml layers/parcelhub/pyproject.toml
	@test -n "$(PYTHON)" || { echo "need python >= 3.11"; exit 1; }
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(QUIET_PIP)
	# the lock is the whole tree (pip freeze): installed as it is, without re-resolving (see requirements/dev.in)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/dev.lock $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e layers/parcelhub -e . $(QUIET_PIP)
	@touch $@

.PHONY: venv
venv: $(STAMP)

$(SAM_VENV)/.installed: requirements/sam.lock
	@test -n "$(PYTHON)" || { echo "need python >= 3.11"; exit 1; }
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements/sam.lock $(QUIET_PIP)
	@touch $@

$(SCAN_VENV)/.installed: requirements/scan.lock
	@test -n "$(PYTHON)" || { echo "need python >= 3.11"; exit 1; }
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --no-deps -r requirements/scan.lock $(QUIET_PIP)
	@touch $@

.PHONY: lint
lint: $(STAMP) $(SAM_VENV)/.installed $(SCAN_VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy layers/parcelhub/parcelhub functions tools sandbox bench
	# security scanners: every finding fixed or suppressed in place with its reason (docs/security.md)
	$(BIN)/bandit --quiet --recursive layers/parcelhub/parcelhub functions
	$(SCAN_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --region us-east-1
	$(BIN)/python -m parcelhub.api.openapi --check infra/openapi.json
	$(BIN)/python -m tools.event_schemas --check infra/events --docs docs/events.md
	$(BIN)/python -m tools.security_doc --check docs/security.md

.PHONY: test
test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) tests/unit tests/integration
	$(BIN)/python -m pytest -n 3 --dist loadgroup --durations=15 tests/e2e  # mostly waiting on the local stacks: 3 workers on 2 cores

.PHONY: local
local: $(STAMP)
	$(BIN)/python -m sandbox.local

.PHONY: demo
demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m bench

.PHONY: backtest
backtest: $(STAMP)
	$(BIN)/python -m bench.backtest $(if $(HISTORY),--history $(HISTORY))

.PHONY: report
report: $(STAMP)
	$(BIN)/python -m sandbox.demo.scorecards $(if $(API),--api "$(API)") $(if $(KEY),--key "$(KEY)") --out var/scorecards-report.html

.PHONY: build
build: $(SAM_VENV)/.installed
	PATH="$$(dirname $(PYTHON)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM) build

.PHONY: openapi
openapi: $(STAMP)
	$(BIN)/python -m parcelhub.api.openapi --write infra/openapi.json

.PHONY: format
format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: lock
lock:
	rm -rf /tmp/parcelhub-lock && $(PYTHON) -m venv /tmp/parcelhub-lock
	grep -v '^aws-sam-translator' requirements/dev.in > /tmp/parcelhub-lock/dev.in
	/tmp/parcelhub-lock/bin/pip install --quiet -r /tmp/parcelhub-lock/dev.in
	/tmp/parcelhub-lock/bin/pip install --quiet --no-deps $$(grep '^aws-sam-translator' requirements/dev.in)
	/tmp/parcelhub-lock/bin/pip freeze --exclude-editable > requirements/dev.lock

.PHONY: clean
clean:
	rm -rf $(VENV) $(SAM_VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache var
