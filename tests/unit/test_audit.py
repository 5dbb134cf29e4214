"""The audit log's allow-list: keys not listed never reach a line."""

from __future__ import annotations

import io
import json
import logging

from worker import audit


def test_keys_outside_the_allow_list_are_dropped() -> None:
    stream = io.StringIO()
    audit.configure(stream)
    audit.lifecycle("worker.starting", group_id="g", first_name="Pat", birth_date="1980-04-02", drug_description="x")
    line = json.loads(stream.getvalue())
    assert line["event"] == "worker.starting"
    assert line["group_id"] == "g"
    assert not {"first_name", "birth_date", "drug_description"} & set(line)


def test_nested_lines_keep_only_their_allowed_keys() -> None:
    stream = io.StringIO()
    audit.configure(stream)
    audit.lifecycle("x", lines=[{"line_number": 1, "rule": "r", "drug_description": "ketamine 100 mg/mL"}])
    assert json.loads(stream.getvalue())["lines"] == [{"line_number": 1, "rule": "r"}]


def test_library_logs_are_json_lines_through_the_same_filter() -> None:
    stream = io.StringIO()
    audit.configure(stream)
    logging.getLogger("faust.test").warning("something happened")
    line = json.loads(stream.getvalue())
    assert (line["event"], line["logger"], line["level"]) == ("something happened", "faust.test", "warning")


def test_only_the_entries_with_keys_outside_the_list_are_rebuilt() -> None:
    stream = io.StringIO()
    audit.configure(stream)
    clean = {"line_number": 1, "rule": "r", "carc": ["16"]}
    audit.lifecycle(
        "x",
        lines=[clean, {"line_number": 2, "rule": "r", "member_name": "Pat"}, "not an entry"],
        rule_trace=[{"line_number": 2, "rule": "r", "evidence": {"route": "IV"}, "free_text": "note"}],
        birth_date="1980-04-02",
    )
    line = json.loads(stream.getvalue())
    assert line["lines"] == [clean, {"line_number": 2, "rule": "r"}]
    assert line["rule_trace"] == [{"line_number": 2, "rule": "r", "evidence": {"route": "IV"}}]
    assert "birth_date" not in line


class CountingStream(io.StringIO):
    """A stream that counts its flushes: one a write call that reaches the file."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_a_held_block_writes_its_lines_in_order_with_one_flush() -> None:
    stream = CountingStream()
    audit.configure(stream)
    with audit.held():
        for number in range(3):
            audit.lifecycle("x", events=number)
        assert stream.getvalue() == "", "held until the block ends"
    assert [json.loads(line)["events"] for line in stream.getvalue().splitlines()] == [0, 1, 2]
    assert stream.flushes == 1
    audit.lifecycle("y")
    assert stream.flushes == 2, "outside a held block each line is flushed as it is written"


def test_a_held_block_that_fails_still_writes_its_lines() -> None:
    stream = CountingStream()
    audit.configure(stream)
    try:
        with audit.held():
            audit.lifecycle("x")
            with audit.held():  # nested: the outer block writes
                audit.lifecycle("y")
            assert stream.getvalue() == ""
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["x", "y"]
