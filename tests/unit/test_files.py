"""Files the worker writes carry PHI: created 0600, or 0640 for a configured group."""

from __future__ import annotations

import grp
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import example_event, to_bytes
from worker.files import FileGroupError, open_private, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_private(tmp_path: Path) -> None:
    with open_private(tmp_path / "audit.log", "a", encoding="utf-8") as handle:
        handle.write("line\n")
    assert mode(tmp_path / "audit.log") == 0o600


def test_an_existing_world_readable_file_is_narrowed_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text("old\n")
    path.chmod(0o644)
    with open_private(path, "a", encoding="utf-8") as handle:
        handle.write("new\n")
    assert mode(path) == 0o600
    assert path.read_text() == "old\nnew\n"


def test_a_configured_group_may_read(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    write_private(tmp_path / "report.md", "# report\n", group=group)
    assert mode(tmp_path / "report.md") == 0o640
    assert (tmp_path / "report.md").stat().st_gid == os.getgid()


def test_an_unknown_group_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileGroupError, match="no group"):
        write_private(tmp_path / "x", "x", group="no-such-group-here")


def test_replay_writes_its_outputs_state_and_reports_privately(tmp_path: Path) -> None:
    source = tmp_path / "claims.jsonl"
    source.write_bytes(to_bytes(example_event()) + b"\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    cli = str(Path(sys.executable).with_name("claims-worker"))
    done = subprocess.run(
        [cli, "replay", "--from-file", str(source), "--output-file", str(tmp_path / "out.jsonl"),
         "--report-dir", str(tmp_path / "report"), "--compare-with", str(source)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = [tmp_path / "out.jsonl", *sorted((tmp_path / "report").iterdir())]
    assert {p.name for p in written} >= {"out.jsonl", "state.json", "report.json", "report.md"}
    assert {p.name: mode(p) for p in written} == dict.fromkeys((p.name for p in written), 0o600)
    assert mode(tmp_path / "report") == 0o700
