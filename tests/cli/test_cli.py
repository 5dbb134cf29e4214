"""The `claims-worker` console script, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.builders import EXAMPLE_EVENT, claim_event, example_event
from worker.policy_files import bundled_policy_dir

CLI = str(Path(sys.executable).with_name("claims-worker"))
REVISION_1 = bundled_policy_dir().parent / "archive" / "revision-1"
REVISION_2 = bundled_policy_dir().parent / "archive" / "revision-2"
"""The policy files of the team's first reading of MB2300 (what-if)."""


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([CLI, *args], input=stdin, capture_output=True, timeout=120, check=False)


def jsonl(*events: dict[str, object]) -> bytes:
    return b"".join(json.dumps(event).encode() + b"\n" for event in events)


class TestAdjudicate:
    def test_the_example_event_is_denied_under_section_2_1_with_carc_204(self) -> None:
        done = run("adjudicate", "-", stdin=jsonl(example_event()))
        assert done.returncode == 0, done.stderr
        (line,) = done.stdout.splitlines()
        event = json.loads(line)
        assert event["event_type"] == "claim.adjudicated"
        drug = event["lines"][0]
        assert (drug["outcome"], drug["policy_sections"][0], drug["carc"]) == ("denied", "2.1", ["204"])

    def test_the_output_event_id_never_changes_for_the_same_input(self) -> None:
        # Downstream consumers de-duplicate on this id: it must survive releases of the same reading.
        first = json.loads(run("adjudicate", "-", stdin=jsonl(example_event())).stdout)
        second = json.loads(run("adjudicate", "-", stdin=jsonl(example_event())).stdout)
        assert first["event_id"] == second["event_id"] == "e25e35bc-b088-5b3a-bbe6-2ed34a82e67d"
        assert first["policy"] == {"policy_id": "MB2300", "versions": ["2025.08.21"], "revision": 3}

    def test_revision_2_kept_for_what_if_gives_the_ids_it_always_gave(self) -> None:
        # Revision 3 derives ids from the claim (member, claim id, content), not the input event id;
        # revision 2, kept loadable, still derives them from the input event id, as it always did.
        old = json.loads(run("adjudicate", "-", "--policy-dir", str(REVISION_2), stdin=jsonl(example_event())).stdout)
        assert old["event_id"] == "31465303-c8c5-5ace-9b65-955b04770b51"
        assert old["policy"]["revision"] == 2

    def test_another_reading_of_the_policy_gives_another_output_id(self) -> None:
        # Revision 1 (kept loadable for what-if) keeps the id it always gave; the current one differs,
        # so a consumer de-duplicating on event_id never keeps a body of the other reading.
        old = json.loads(run("adjudicate", "-", "--policy-dir", str(REVISION_1), stdin=jsonl(example_event())).stdout)
        new = json.loads(run("adjudicate", "-", stdin=jsonl(example_event())).stdout)
        assert old["event_id"] == "eb9a69ea-4ad3-5458-b53b-7584786b9d76"
        assert old["policy"]["revision"] == 1
        assert new["event_id"] != old["event_id"]

    def test_bad_lines_become_dead_letters_and_processing_goes_on(self, tmp_path: Path) -> None:
        bad_schema = example_event()
        bad_schema["claim"]["provider"]["npi"] = 1234567890  # a number: not a claim as the contract reads it
        source = tmp_path / "claims.jsonl"
        source.write_bytes(
            jsonl(example_event()) + b'{"truncated": \n' + b"\xff\xfe\n" + b"\n" + jsonl(bad_schema, claim_event())
        )
        done = run("adjudicate", str(source))
        assert done.returncode == 0, done.stderr
        outputs = [json.loads(line) for line in done.stdout.splitlines()]
        assert [o["event_type"] for o in outputs] == [
            "claim.adjudicated",
            "claim.dead_lettered",
            "claim.dead_lettered",
            "claim.dead_lettered",
            "claim.adjudicated",
        ]
        not_json, not_utf8, schema = outputs[1:4]
        assert (not_json["kind"], not_json["source"]["file_line"]) == ("not_json", 2)
        assert (not_utf8["kind"], not_utf8["source"]["file_line"]) == ("not_utf8", 3)
        assert (schema["kind"], schema["source"]["file_line"]) == ("schema_violation", 5)
        assert schema["errors"][0]["path"] == "claim.provider.npi"
        assert "valid string" in schema["reason"]

    def test_a_missing_input_file_is_a_one_line_error_and_exit_2(self, tmp_path: Path) -> None:
        done = run("adjudicate", str(tmp_path / "nope.jsonl"))
        assert done.returncode == 2
        assert done.stderr.decode().count("\n") == 1
        assert "cannot open" in done.stderr.decode()

    def test_a_malformed_policy_is_a_one_line_error_and_exit_3(self, tmp_path: Path) -> None:
        target = tmp_path / "policies"
        shutil.copytree(bundled_policy_dir(), target, ignore=shutil.ignore_patterns("__pycache__"))
        policy = target / "MB2300" / "2025.08.21.yaml"
        policy.write_text(policy.read_text().replace("set: bundled_rate", "set: nowhere"))
        done = run("adjudicate", "--policy-dir", str(target), "-", stdin=b"")
        assert done.returncode == 3
        stderr = done.stderr.decode()
        assert stderr.count("\n") == 1
        assert "2025.08.21.yaml" in stderr
        assert "nowhere" in stderr
        assert "Traceback" not in stderr

    def test_pinning_an_unknown_version_is_a_one_line_error(self) -> None:
        done = run("adjudicate", "--policy-version", "1999.01.01", "-", stdin=b"")
        assert done.returncode == 3
        assert "1999.01.01" in done.stderr.decode()
        assert "Traceback" not in done.stderr.decode()


class TestExplain:
    def test_explains_each_line_with_rule_sections_and_code_meanings(self) -> None:
        done = run("explain", str(EXAMPLE_EVENT))
        assert done.returncode == 0, done.stderr
        text = done.stdout.decode()
        assert "Claim CLM-2025-000123" in text
        assert "rule      criteria.chronic_pain" in text
        assert "section   2.1: IV ketamine is not covered for chronic pain" in text
        assert "CARC 204  This service/equipment/drug is not covered" in text
        assert "RARC N356 Not covered when performed with" in text
        assert "G90.523: Complex regional pain syndrome I of lower limb, bilateral" in text

    def test_explain_holds_no_phi(self) -> None:
        text = run("explain", str(EXAMPLE_EVENT)).stdout.decode()
        for value in ("Pat", "Example", "1980-04-02", "hydrochloride"):
            assert value not in text


def test_an_event_id_repeated_with_other_content_is_a_conflict_offline_as_in_the_stream() -> None:
    # The history that knows an event id is its member's, offline as in the stream.
    first = claim_event(claim_id="FILE-1", member_id="M1", event_id="9d1f3c3a-0b7e-4a55-8f1e-2c3d4e5f6a7b")
    other = claim_event(claim_id="FILE-2", member_id="M1", event_id="9d1f3c3a-0b7e-4a55-8f1e-2c3d4e5f6a7b")
    done = run("adjudicate", "-", stdin=jsonl(first, other, first))
    assert done.returncode == 0, done.stderr
    decided, conflict, again = (json.loads(line) for line in done.stdout.splitlines())
    assert conflict["kind"] == "event_id_conflict"
    assert decided["event_id"] in conflict["reason"]
    assert {k: v for k, v in again.items() if k != "decided_at"} == {
        k: v for k, v in decided.items() if k != "decided_at"
    }


def test_a_file_is_decided_with_the_streams_history_rules() -> None:
    """An earlier claim in the file makes a later one a duplicate, and a replacement supersedes, per member."""
    original = claim_event(claim_id="F-A", member_id="M-FILE")
    repeat = claim_event(claim_id="F-B", member_id="M-FILE")
    elsewhere = claim_event(claim_id="F-C", member_id="M-OTHER")
    replacement = claim_event(claim_id="F-A2", member_id="M-FILE", frequency_code="7", original_claim_id="F-A")
    done = run("adjudicate", "-", stdin=jsonl(original, repeat, elsewhere, replacement))
    assert done.returncode == 0, done.stderr
    first, second, third, fourth = (json.loads(line) for line in done.stdout.splitlines())
    assert second["lines"][0]["rule"] == "claim.duplicate"
    assert third["lines"][0]["rule"] != "claim.duplicate", "another member's identical lines are not duplicates"
    assert fourth["supersedes_event_id"] == first["event_id"]


def test_a_replay_warms_its_history_from_before_the_range_and_says_when_it_has_none(tmp_path: Path) -> None:
    export = tmp_path / "claims.jsonl"
    export.write_bytes(
        jsonl(claim_event(claim_id="H-A", member_id="M-H"), claim_event(claim_id="H-B", member_id="M-H"))
    )
    outputs = {}
    for name, extra in (("cold", ()), ("warm", ("--history-from", "0"))):
        out = tmp_path / f"{name}.jsonl"
        done = run(
            "replay",
            "--from-file",
            str(export),
            "--start-offset",
            "1",
            "--output-file",
            str(out),
            "--report-dir",
            str(tmp_path / name),
            *extra,
        )
        assert done.returncode == 0, done.stderr
        outputs[name] = (json.loads(out.read_text()), done.stderr.decode())
    cold, cold_said = outputs["cold"]
    warm, warm_said = outputs["warm"]
    assert cold["lines"][0]["rule"] != "claim.duplicate"
    assert "history: none before the range" in cold_said
    assert warm["lines"][0]["rule"] == "claim.duplicate", "H-A, before the range, makes H-B a duplicate"
    assert "history: warmed from 1 events before the range" in warm_said
