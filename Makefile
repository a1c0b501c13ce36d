# Two commands matter to a newcomer: `make run` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENV ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20
export PYTHONDONTWRITEBYTECODE ?= 1

.PHONY: run test test-slow test-unit test-integration test-e2e test-infra lint format synth diff deploy bench lock clean

# The venv is rebuilt only when a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m local.stack

# Extra pytest arguments, e.g. `make test PYTEST_ARGS=--basetemp=/tmp/mine`.
PYTEST_ARGS ?=

# Everything but the tests marked `slow` (pyproject's addopts deselect them).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The long ones: fault injection on real processes, the 20,000-job soak, schemathesis.
# Two at a time (the fault tests mostly wait out freezes and leases while the soak works):
# about 5 minutes instead of 9. -rP prints the figures each test reports.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -n 2 -rP $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

test-infra: $(STAMP)
	$(BIN)/python -m pytest tests/infrastructure

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(wildcard layers/taskmill functions local infra app.py bench tests)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# No Docker and no AWS account needed: layers bundle locally, cdk-nag runs in the synth,
# cfn-lint checks the template (W3005 is CDK's DependsOn-beside-GetAtt noise).
synth: $(STAMP)
	$(BIN)/python app.py --env $(ENV)
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/taskmill-$(ENV).template.json
	@echo "synthesized cdk.out/taskmill-$(ENV).template.json (cdk-nag: cdk.out/validation-report.json)"

node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund

# cdk.json's "app" runs .venv/bin/python (making .venv first if needed): `npx cdk ...` works
# the same without make and without an activated venv.
diff: $(STAMP) node_modules/.bin/cdk
	npx cdk diff -c env=$(ENV) --all

deploy: $(STAMP) node_modules/.bin/cdk
	npx cdk deploy -c env=$(ENV) --all

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt -c constraints.txt
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@for b in $(wildcard bench/bench_*.py); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Full pin set for the dev/local environment (pip freeze of requirements-dev.txt); refresh with `make lock`.' > constraints.txt

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
