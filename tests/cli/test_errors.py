"""Every error of the command line is one line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import EXAMPLE_EVENT

CLI = str(Path(sys.executable).with_name("claims-worker"))


def shell(command: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI through a shell, for what only a shell can do (closing a descriptor)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    return subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=120, check=False)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("claims-worker: error: ")
    return line


@pytest.mark.parametrize(
    ("command", "code", "says"),
    [
        (f"{CLI} adjudicate <&-", 2, "standard input is closed"),
        (f"{CLI} adjudicate {EXAMPLE_EVENT} >&-", 74, "standard output is closed"),
        (f"{CLI} explain {EXAMPLE_EVENT} >&-", 74, "standard output is closed"),
        (f"{CLI} adjudicate {EXAMPLE_EVENT} > /dev/full", 74, "No space left on device"),
        (f"{CLI} replay --topic t --partitions a,b", 2, "not a comma-separated list of partition numbers"),
        (f"{CLI} replay --topic t --partitions 1,-2", 2, "partition numbers are 0 or more"),
        (f"{CLI} replay --from-file {EXAMPLE_EVENT} --start-offset -5", 2, "an offset is 0 or more"),
        (f"{CLI} replay --from-file {EXAMPLE_EVENT} --start-offset 5 --end-offset 3", 2, "is not after"),
        (f"{CLI} replay --topic t --start-time 2099-01-01T00:00:00Z", 2, "--start-time is in the future"),
        (
            f"{CLI} replay --topic t --start-time 2025-01-02T00:00:00Z --end-time 2025-01-01T00:00:00Z",
            2,
            "--end-time is before --start-time",
        ),
        (f"{CLI} samples publish --repeat 0", 2, "at least one round"),
        (f"{CLI} replay --topic t --bogus", 2, "unrecognized arguments: --bogus"),
        (
            f"CLAIMS_SECURITY_PROTOCOL=SSL CLAIMS_SSL_CAFILE=/no/such/ca.pem {CLI} topics apply",
            3,
            "cannot read the SSL CA file /no/such/ca.pem",
        ),
        (
            f"CLAIMS_SECURITY_PROTOCOL=SSL CLAIMS_SSL_CAFILE=/no/such/ca.pem {CLI} replay --topic t",
            3,
            "cannot read the SSL CA file",
        ),
        (f"{CLI} adjudicate --policy-version 1999.01.01 {EXAMPLE_EVENT}", 3, "has no version '1999.01.01'"),
    ],
)
def test_each_error_is_one_line_with_its_exit_status(command: str, code: int, says: str) -> None:
    done = shell(command)
    assert done.returncode == code, done.stderr
    assert says in one_line(done)
