"""Fixtures shared by every test tier."""

from __future__ import annotations

from datetime import UTC, datetime

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
    """Say which Kafka-protocol broker the integration tests ran against."""
    from tests.integration.conftest import BROKERS_USED

    for used in BROKERS_USED:
        terminalreporter.write_line(f"integration tests ran against the {used}")
