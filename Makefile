# Everything a fresh machine needs: `make test` and `make demo` create the virtual
# environment and install the pinned dependencies before they run.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lint typecheck imports schemas test test-unit test-integration demo clean

install: $(STAMP)

$(STAMP): requirements/runtime.txt requirements/dev.txt pyproject.toml contracts/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e ./contracts -e .
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

# Regenerate the committed JSON Schemas from the contract models.
schemas: install
	cd contracts && ../$(BIN)/python -m claims_contracts.schemas schemas/v1

test: lint typecheck imports
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit tests/contract tests/cli

demo: install
	$(BIN)/python -m worker.demo

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info contracts/*.egg-info contracts/build
