# Cashew: `make dev` runs the whole system locally, `make test` runs every check.
# Both build what they need first: the only prerequisite is Python 3.13 (found on PATH or in
# pyenv's versions; scripts/find-python313 says what to install when it is missing).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

VENV     := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY       := $(VENV)/bin/python
export PYTHONPATH := layers/shared/python:.
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# sam build's python3.13 workflow needs python3.13 on PATH.
SAM = PATH="$$(dirname "$$(scripts/find-python313)"):$$PATH" $(SAM_VENV)/bin/sam

.PHONY: help dev test checks lint types unit integration e2e tests validate build check-layer capacity \
        imports fuzz bandit cfn-lint checkov \
        invoke redrive republish reconcile bench bench-compare openapi create-admin format clean web

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# One virtualenv per tool set (their pins differ): created with Python 3.13, then its
# requirements file (the first prerequisite) installed; rebuilt when that file changes.
define venv
@python313="$$(scripts/find-python313)"; \
  echo "creating $(@D) with $$python313"; rm -rf $(@D); "$$python313" -m venv $(@D)
$(@D)/bin/pip install --quiet --upgrade pip
$(@D)/bin/pip install --quiet -r $<
@touch $@
endef

$(VENV)/.installed: requirements-dev.txt layers/shared/python/requirements.txt
	$(venv)

$(SAM_VENV)/.installed: requirements-sam.txt
	$(venv)

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(venv)

# The web client and the docs page (web/): npm ci from the lock file, then vite's build (which
# typechecks) into web/dist and the self-contained docs page into functions/docs/docs.html and
# web/dist/docs/index.html. Rebuilt when a source, the lock file or the OpenAPI document changes.
WEB_SOURCES := $(shell find web/src web/public web/scripts -type f 2>/dev/null) \
               web/index.html web/vite.config.ts web/tsconfig.json web/package.json
web/node_modules/.installed: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web/dist/.built functions/docs/docs.html &: web/node_modules/.installed $(WEB_SOURCES) functions/docs/openapi.json
	cd web && npm run --silent build && node scripts/build-docs.mjs
	@du -b web/dist/assets/*.js | awk '{n+=$$1} END {printf "web client: %d bytes of script\n", n}'
	@touch web/dist/.built

web: web/dist/.built ## build the web client and the docs page (web/dist, functions/docs/docs.html)

dev: $(VENV)/.installed web/dist/.built ## run the whole system on 127.0.0.1:3000 (Ctrl-C stops it)
	exec $(PY) -m local.dev

# make test runs in three steps so that both cores stay busy: the three virtualenvs at once;
# the tests (in pytest-xdist workers); then the fuzz gate (a server and a client taking turns on
# about one core for its time budget) beside the static checks and sam build, one after another
# on the other core. Each step stops make test at the first failure.
test: ## every check: lint, types, import contracts, bandit, tests, fuzzing, sam validate --lint, cfn-lint, checkov, sam build
	@$(MAKE) --no-print-directory -j3 $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed web/node_modules/.installed
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory -j2 --output-sync=target fuzz checks
	@echo "make test: all checks passed"

checks: lint types imports bandit validate cfn-lint checkov check-layer

lint: $(VENV)/.installed ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed ## apply ruff's formatting and fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

types: $(VENV)/.installed ## mypy (strict) on the layer and the local stack
	$(VENV)/bin/mypy

imports: $(VENV)/.installed ## import-linter: no cycle between cashew's packages, the layers, stores only through their module
	$(VENV)/bin/lint-imports

bandit: $(VENV)/.installed ## bandit on all non-test code; each suppression is a `# nosec BXXX # reason`
	$(VENV)/bin/bandit -q -c pyproject.toml -r layers functions local scripts tools bench

TEST_WORKERS ?= 2
CHROMIUM ?= $(or $(CASHEW_CHROMIUM),/usr/bin/chromium)
tests: $(VENV)/.installed web/dist/.built ## unit, integration, e2e and browser tests, in TEST_WORKERS processes (default 2)
	@if [ -x "$(CHROMIUM)" ]; then echo "browser tests: Chromium at $(CHROMIUM)"; \
	  else echo "browser tests SKIPPED: no Chromium at $(CHROMIUM) (apt-get install chromium; .ci/run does)"; fi
	CASHEW_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -n $(TEST_WORKERS)

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

e2e: $(VENV)/.installed web/dist/.built ## e2e tests (start their own stack, or use CASHEW_E2E_URL)
	$(PY) -m pytest tests/e2e

fuzz: $(VENV)/.installed web/dist/.built ## schemathesis, every operation and phase, against a local stack of its own (a few minutes)
	$(PY) -m pytest -m fuzz tests/e2e/test_fuzz.py -s -p no:cacheprovider

validate: $(SAM_VENV)/.installed ## sam validate --lint
	$(SAM) validate --lint

cfn-lint: $(SAM_VENV)/.installed ## cfn-lint with informational checks on template.yaml (.cfnlintrc.yaml)
	$(SAM_VENV)/bin/cfn-lint

checkov: $(CHECKOV_VENV)/.installed ## checkov on template.yaml (.checkov.yaml: skipped checks and why)
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f template.yaml

# sam build, then bytecode for every module it made (tools/bytecode.py: Lambda cannot keep what
# it compiles, and SAM's zips defeat timestamp-checked bytecode), checked by source hash.
build: $(SAM_VENV)/.installed web/dist/.built ## sam build (arm64, python3.13), then every module's bytecode
	$(SAM) build
	$(SAM_VENV)/bin/python -m tools.bytecode

check-layer: build ## the built layer has python/cashew and no boto3/botocore; every module has its bytecode
	@test -d .aws-sam/build/SharedLayer/python/cashew || { echo "layer lacks python/cashew"; exit 1; }
	@! ls -d .aws-sam/build/SharedLayer/python/{boto3,botocore} 2>/dev/null || { echo "layer bundles boto3/botocore"; exit 1; }
	@echo "layer: python/cashew present, no boto3/botocore"
	$(SAM_VENV)/bin/python -m tools.bytecode --check

invoke: $(VENV)/.installed ## run one function with one event: make invoke FUNCTION=LoginFunction EVENT=events/auth/login.json
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<logical id> EVENT=events/<module>/<op>.json"; exit 2; }
	$(PY) -m local.invoke "$(FUNCTION)" "$(EVENT)"

redrive: $(VENV)/.installed ## while make dev runs: move the log's dead-letter messages back to its queue
	$(PY) -m local.redrive

republish: $(VENV)/.installed ## while make dev runs: publish again what PublishFailuresQueue describes
	$(PY) -m local.republish

reconcile: $(VENV)/.installed ## while make dev runs: one reconciliation run now (prints what it settled)
	$(PY) -m local.reconcile

bench: $(VENV)/.installed web/dist/.built ## cold starts, AWS calls and DynamoDB units per operation, cost per 1M payments, throughput -> bench/results.json
	$(PY) -m bench.run

capacity: $(VENV)/.installed ## headroom at RATE payments/s (default 10000) against every quota, from bench/results.json (SET="LogDayShards=32 ...")
	$(PY) -m bench.capacity_model --rate $(or $(RATE),10000) $(foreach p,$(SET),--set $(p))

bench-compare: $(VENV)/.installed ## each handler's cold import against AGAINST=<git revision>, in pairs
	$(PY) -m bench.compare --against $(AGAINST)

openapi: $(VENV)/.installed ## regenerate functions/docs/openapi.json from the handlers (commit it)
	$(PY) -m tools.openapi

create-admin: $(VENV)/.installed ## first admin of a deployed stack: make create-admin STACK=cashew-prod EMAIL=ops@example.com
	@test -n "$(STACK)" -a -n "$(EMAIL)" || { echo "usage: make create-admin STACK=<stack name> EMAIL=<email> [NAME=...] [REGION=...]"; exit 2; }
	$(PY) scripts/create_admin.py --stack "$(STACK)" --email "$(EMAIL)" $(if $(NAME),--name "$(NAME)") $(if $(REGION),--region "$(REGION)")

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache \
	  web/node_modules web/dist functions/docs/docs.html functions/docs/docs.csp
