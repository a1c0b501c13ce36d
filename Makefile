# Two commands matter to a newcomer: `make run` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENV ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20
export PYTHONDONTWRITEBYTECODE ?= 1

.PHONY: browser shells run test test-slow test-unit test-integration test-e2e test-infra lint format synth diff deploy bench lock clean

# The venv is rebuilt when a requirements file changes, or when its Python no longer runs
# (removed or upgraded under it). Before that: the Python that makes it must be 3.11+, and a
# broken .venv (no pip: `python3 -m venv` without Debian's python3-venv, or a half-made one)
# is removed and made again; each failure is one line saying what to install.
ifneq ($(wildcard $(STAMP)),)
ifneq ($(shell $(BIN)/python -c 'print("ok")' 2>/dev/null),ok)
$(shell rm -f $(STAMP))
endif
endif

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@if [ -e $(VENV) ] && ! $(BIN)/python -c 'import sys, pip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	  echo "$(VENV) is broken (no working Python 3.11+ with pip in it): removing it and making it again" >&2; rm -rf $(VENV); fi
	@test -x $(BIN)/python || { \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	    echo "taskmill needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>/dev/null || echo 'not found'). Install one and name it: make $(MAKECMDGOALS) PYTHON=python3.11" >&2; exit 1; }; \
	  $(PYTHON) -m venv $(VENV) >/dev/null 2>&1 || true; }
	@$(BIN)/python -c 'import pip' >/dev/null 2>&1 || { rm -rf $(VENV); \
	  echo "'$(PYTHON) -m venv' cannot make a venv with pip here: install the venv module (Debian/Ubuntu: sudo apt install python3-venv, or python3.11-venv), then run make again" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m taskmill_local.stack

# Node packages: the CDK CLI, and Pyodide, whose CPython 3.14 compiles the layers' bytecode
# for the Lambda runtime (infra/taskmill_cdk/packaging.py); the packaging tests check that bytecode.
NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

# Extra pytest arguments, e.g. `make test PYTEST_ARGS=--basetemp=/tmp/mine`.
PYTEST_ARGS ?=

# Debian's Chromium for the console's browser tests (tests/e2e/console), driven by Playwright
# with executable_path (no browser download). Installed with apt-get when missing and make runs
# as root; otherwise one line says how, and those tests skip saying why. With
# TASKMILL_REQUIRE_BROWSER=1 (.ci/run sets it) a missing Chromium is an error instead.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the console's browser tests (apt-get)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	      || echo "apt-get could not install chromium" >&2; \
	  else echo "chromium is not installed: the console's browser tests will skip (install it: sudo apt-get install chromium)" >&2; fi; \
	  command -v chromium >/dev/null 2>&1 || [ "$${TASKMILL_REQUIRE_BROWSER:-0}" != 1 ]; }

# zsh for the CLI's zsh completion test (tests/unit/test_cli.py; bash is always there):
# installed with apt-get when it is missing and make runs as root, as chromium is; otherwise
# one line says how, and that one test skips saying why.
shells:
	@command -v zsh >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing zsh for the CLI's zsh completion test (apt-get)"; \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zsh >/dev/null 2>&1 \
	      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zsh >/dev/null; }; } \
	      || echo "apt-get could not install zsh: the zsh completion test will skip" >&2; \
	  else echo "zsh is not installed: the CLI's zsh completion test will skip (install it: sudo apt-get install zsh)" >&2; fi; }

# Parallel test workers (pytest-xdist): `auto` is one per CPU, at most 4 (tests/conftest.py);
# `make test TEST_WORKERS=0` runs every test in one process.
TEST_WORKERS ?= auto

# Everything but the tests marked `slow` (pyproject's addopts deselect them), on TEST_WORKERS
# workers. `--dist loadfile` keeps each module on one worker (its local stack starts once),
# and tests/conftest.py keeps the infrastructure tests together (one synth); modules go out
# in collection order, so the long end-to-end ones start first and the short unit tests fill
# in at the end.
test: $(STAMP) $(NODE_STAMP) browser shells
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The long ones: fault injection on real processes, the 20,000-job soak, schemathesis.
# Two at a time (the fault tests mostly wait out freezes and leases while the soak works):
# about 5 minutes instead of 9. -rP prints the figures each test reports.
test-slow: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest -m slow -n 2 -rP $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

test-infra: $(STAMP) $(NODE_STAMP)
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
synth: $(STAMP) $(NODE_STAMP)
	$(BIN)/python app.py --env $(ENV)
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/taskmill-$(ENV).template.json
	@echo "synthesized cdk.out/taskmill-$(ENV).template.json (cdk-nag: cdk.out/validation-report.json)"

# cdk.json's "app" runs .venv/bin/python (making .venv first if needed): `npx cdk ...` works
# the same without make and without an activated venv.
diff: $(STAMP) $(NODE_STAMP)
	npx cdk diff -c env=$(ENV) --all

deploy: $(STAMP) $(NODE_STAMP)
	npx cdk deploy -c env=$(ENV) --all

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt -c constraints.txt
	@touch $(BENCH_STAMP)

# Every bench in turn and one summary table; the output is kept in bench/results/last-run.txt.
# `make bench BENCH=worker` runs only the benches whose file name contains "worker".
BENCH ?=
bench: $(BENCH_STAMP) $(NODE_STAMP)
	$(BIN)/python bench/run_all.py $(BENCH)

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Full pin set for the dev/local environment (pip freeze of requirements-dev.txt); refresh with `make lock`.' > constraints.txt

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache
