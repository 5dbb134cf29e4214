"""Files the worker writes hold PHI (member ids with diagnosis codes): created private.

The audit log, replay outputs, state and reports are created 0600, or 0640 and owned by a
group when one is configured (`CLAIMS_FILE_GROUP`, for a log shipper that runs as that
group). `restrict_new_files` sets the process umask once at start, so every file the
process creates (Faust's data directory included) starts private; `open_private` also
narrows a file that already existed with wider permissions.
"""

from __future__ import annotations

import grp
import os
from pathlib import Path
from typing import IO, Any

PRIVATE = 0o600
SHARED_WITH_GROUP = 0o640


class FileGroupError(ValueError):
    """The configured file group does not exist on this machine."""


def group_id(group: str | None) -> int | None:
    """The numeric id of a group name (or number); None when no group is configured.

    Raises:
        FileGroupError: no such group.
    """
    if group is None:
        return None
    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise FileGroupError(f"no group {group!r} for the files the worker writes") from None


def restrict_new_files(group: str | None = None) -> None:
    """Make every file and directory this process creates private (0600/0700, or 0640/0750 with a group)."""
    os.umask(0o027 if group is not None else 0o077)


def open_private(path: Path | str, mode: str = "a", *, group: str | None = None, **options: Any) -> IO[Any]:
    """Open a file for writing, created (or narrowed) to 0600, or 0640 owned by `group`.

    Raises:
        OSError: the file cannot be opened.
        FileGroupError: the group does not exist.
    """
    gid = group_id(group)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    permissions = PRIVATE if gid is None else SHARED_WITH_GROUP
    descriptor = os.open(path, flags, permissions)
    try:
        if gid is not None:
            os.fchown(descriptor, -1, gid)
        os.fchmod(descriptor, permissions)
    except OSError:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, mode, **options)


def write_private(path: Path, text: str, *, group: str | None = None) -> None:
    """Write a whole text file, private as `open_private` makes it."""
    with open_private(path, "w", group=group, encoding="utf-8") as handle:
        handle.write(text)
