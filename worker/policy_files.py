"""Reading policy files: the I/O edge in front of the pure `parse_policy`.

The shipped versions live in `worker/adjudication/policies/<POLICY_ID>/<version>.yaml`
beside a code table `codes.yaml`. A deployment may point at another directory
of the same shape (settings `policy_dir`) to add a version without a release.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from worker.adjudication import CodeTable, PolicyBook, PolicyError, parse_code_table, parse_policy

POLICY_ID = "MB2300"
"""The policy this worker applies."""


def bundled_policy_dir() -> Path:
    """The directory of the policy files shipped inside the package."""
    return Path(str(resources.files("worker.adjudication").joinpath("policies")))


def load_code_table(directory: Path) -> CodeTable:
    """Read and validate the code table of a policy directory."""
    path = directory / "codes.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(str(path), "", f"cannot read: {error.strerror}") from None
    return parse_code_table(text, source=str(path))


def load_policy_book(directory: Path | None = None, policy_id: str = POLICY_ID) -> PolicyBook:
    """Read, validate and order every version of a policy.

    Args:
        directory: a policy directory; the bundled one by default.
        policy_id: which policy's versions to read.

    Returns:
        The policy book.

    Raises:
        PolicyError: a file is missing, unreadable or invalid; the message names the
            file, the field path and the reason.
    """
    root = directory if directory is not None else bundled_policy_dir()
    codes = load_code_table(root)
    files = sorted((root / policy_id).glob("*.yaml"))
    if not files:
        raise PolicyError(str(root / policy_id), "", "no policy version files (*.yaml)")
    versions = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise PolicyError(str(path), "", f"cannot read: {error.strerror}") from None
        policy = parse_policy(text, source=str(path), codes=codes)
        if policy.policy_id != policy_id or path.stem != policy.version:
            raise PolicyError(
                str(path),
                "version",
                f"file name must be <version>.yaml of {policy_id}, got {policy.policy_id} {policy.version}",
            )
        versions.append(policy)
    try:
        return PolicyBook(versions)
    except ValueError as error:
        raise PolicyError(str(root / policy_id), "", str(error)) from None
