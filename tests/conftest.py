"""Fixtures shared by every test tier."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.adjudication import PolicyBook
from worker.policy_files import load_policy_book
from worker.processor import Processor

FIXED_NOW = datetime(2025, 9, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def policies() -> PolicyBook:
    """The bundled MB2300 policy book, loaded once."""
    return load_policy_book()


@pytest.fixture
def processor(policies: PolicyBook) -> Processor:
    """A processor with a fixed clock, so outputs compare whole."""
    return Processor(policies, clock=lambda: FIXED_NOW)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which Kafka-protocol broker the integration tests ran against, and the fault figures."""
    from tests.integration.conftest import BROKERS_USED, FIGURES

    for used in BROKERS_USED:
        terminalreporter.write_line(f"integration tests ran against the {used}")
    for name, figures in FIGURES.items():
        terminalreporter.write_line(f"fault figures, {name}: {json.dumps(figures)}")
    target = os.environ.get("CLAIMS_FIGURES_FILE")
    if target and FIGURES:
        Path(target).write_text(json.dumps(FIGURES, indent=2) + "\n")
