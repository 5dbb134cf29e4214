# Everything a fresh machine needs: `make test` and `make demo` create the virtual
# environment and install the pinned dependencies before they run.
SHELL := /bin/bash
# Python 3.11, 3.12 and 3.13 are supported: `make test PYTHON=python3.13` builds and tests in a
# virtual environment of its own (.venv-python3.13), the default one stays .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv$(if $(filter command line environment,$(origin PYTHON)),-$(notdir $(PYTHON)))
# A pyenv shim answers only for the active version: fall back to the interpreter pyenv installed.
PYTHON_BIN := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/*/bin/$(notdir $(PYTHON)) 2>/dev/null | tail -n 1)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lint typecheck imports deploy-check schemas docs code-sets policy-diff browser test test-unit test-integration soak demo bench clean

install: $(STAMP)

COMPOSE_SCHEMA := $(VENV)/share/compose-spec.json

$(STAMP): requirements/runtime.txt requirements/dev.txt pyproject.toml contracts/pyproject.toml
	test -n "$(PYTHON_BIN)" || { echo "no interpreter $(PYTHON) on this machine"; exit 1; }
	$(PYTHON_BIN) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e ./contracts -e .
	touch $(STAMP)

# The Compose specification's JSON Schema, as shipped inside the docker-compose 1.29.2 wheel
# (taken from the registry, not installed: only the schema file is kept).
$(COMPOSE_SCHEMA): $(STAMP)
	rm -rf $(VENV)/share/compose-wheel && mkdir -p $(VENV)/share/compose-wheel
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --no-deps -d $(VENV)/share/compose-wheel docker-compose==1.29.2
	$(BIN)/python -c "import zipfile, glob, sys; z = zipfile.ZipFile(glob.glob('$(VENV)/share/compose-wheel/*.whl')[0]); open(sys.argv[1], 'wb').write(z.read('compose/config/compose_spec.json'))" $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

# What can be proved about the deployment files without a Docker engine or a cluster.
deploy-check: install $(COMPOSE_SCHEMA)
	$(BIN)/hadolint deploy/Dockerfile
	$(BIN)/kubernetes-validate --strict --quiet deploy/k8s/*.yaml

# Regenerate the committed JSON Schemas from the contract models.
schemas: install
	cd contracts && ../$(BIN)/python -m claims_contracts.schemas schemas/v1

# Regenerate the generated parts of the docs (the settings reference).
docs: install
	$(BIN)/python -m worker.dev.docs

# Rebuild the shipped ICD-10-CM releases from CMS's files (simple-icd-10-cm 1.4.0 and 1.5.0).
code-sets: install
	$(BIN)/python -m worker.dev.code_sets

# Replay the bench mix under revision 2 and revision 3 of the reading; the diff goes in docs/policy.md.
policy-diff: install
	$(BIN)/python -m worker.dev.policy_diff

# Debian's chromium and chromedriver for the workbench's browser test (tests/browser), when missing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing Debian's chromium and chromium-driver"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

test: lint typecheck imports deploy-check browser
	COMPOSE_SCHEMA=$(COMPOSE_SCHEMA) $(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit tests/contract tests/cli

# The long fault tests (three SIGKILLs over 20,000 claims, a 30 s broker freeze over 40,000,
# 10,000 bad inputs through the live worker); figures go to docs/reliability-soak.json.
soak: install
	CLAIMS_SOAK=1 CLAIMS_FIGURES_FILE=docs/reliability-soak.json $(BIN)/pytest tests/integration/test_faults.py

demo: install
	$(BIN)/python -m worker.dev.demo

# Every pipeline on the same data in one run; writes docs/benchmarks.{json,md,png}.
# Sizes: make bench BENCH_ARGS="--claims 50000 --repeats 7".
BENCH_ARGS ?=
QUIX_VENV := .venv-bench-quix

$(QUIX_VENV)/.installed-stamp: requirements/bench-quix.txt
	$(PYTHON_BIN) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/bench-quix.txt
	$(QUIX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e ./contracts -e .
	touch $@

bench: install $(QUIX_VENV)/.installed-stamp
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/bench.txt
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.report

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info contracts/*.egg-info contracts/build
