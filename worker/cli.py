"""The `claims-worker` command line.

Exit status: 0 when every input line yielded an output (decisions and dead
letters alike), 2 when the input cannot be opened or the arguments are wrong,
3 when the configuration (policy files, settings) is invalid. Errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TextIO

from pydantic import BaseModel

from claims_contracts.v1 import SourcePosition
from worker import __version__
from worker.adjudication import PolicyBook, PolicyError
from worker.explain import render
from worker.policy_files import load_code_table, load_policy_book
from worker.processor import DeadLettered, Decided, Processor

EXIT_INPUT = 2
EXIT_CONFIG = 3


def _fail(code: int, message: str) -> NoReturn:
    print(f"claims-worker: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _policies(directory: str | None) -> PolicyBook:
    try:
        return load_policy_book(Path(directory) if directory else None)
    except PolicyError as error:
        _fail(EXIT_CONFIG, f"invalid policy: {error}")


def _open_input(name: str) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")
    except OSError as error:
        _fail(EXIT_INPUT, f"cannot open {name}: {error.strerror}")


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(stream, start=1):
        body = raw.rstrip(b"\r\n")
        if body.strip():
            yield number, body


def cmd_adjudicate(args: argparse.Namespace) -> int:
    """Decide every JSON line of the input; write one JSON line per input line."""
    # One output per input line: a repeated event id is decided (identically) again, not skipped.
    processor = Processor(_policies(args.policy_dir), pinned_version=args.policy_version, skip_redelivered=False)
    stream = _open_input(args.file)
    out = sys.stdout.buffer
    try:
        for number, raw in _lines(stream):
            result = processor.process(raw, SourcePosition(file_line=number))
            if isinstance(result, Decided):
                model: BaseModel = result.event
            elif isinstance(result, DeadLettered):
                model = result.record
            else:  # skip_redelivered=False: a repeated event id is decided again, never skipped
                continue
            out.write(model.model_dump_json().encode())
            out.write(b"\n")
            if isinstance(result, Decided):
                processor.remember(result, emitted=True)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    out.flush()
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain the decision of each claim in a file (one JSON document, or JSON lines)."""
    policies = _policies(args.policy_dir)
    processor = Processor(policies, pinned_version=args.policy_version, skip_redelivered=False)
    codes = load_code_table(Path(args.policy_dir)) if args.policy_dir else load_code_table(_bundled())
    stream = _open_input(args.file)
    with stream:
        data = stream.read()
    documents = [(1, data)] if data.lstrip().startswith(b"{") and b"\n{" not in data.strip() else list(_lines_of(data))
    for number, raw in documents:
        result = processor.process(raw, SourcePosition(file_line=number))
        if isinstance(result, DeadLettered):
            print(f"Input {number}: cannot be read: {result.record.reason}")
        else:
            assert isinstance(result, Decided)  # noqa: S101 - skip_redelivered=False: nothing else comes back
            sys.stdout.write(render(result, policies, codes))
            processor.remember(result, emitted=True)
        print()
    return 0


def _lines_of(data: bytes) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(data.splitlines(), start=1):
        if raw.strip():
            yield number, raw


def _bundled() -> Path:
    from worker.policy_files import bundled_policy_dir

    return bundled_policy_dir()


def _settings() -> Any:
    from pydantic import ValidationError

    from worker.settings import load_settings

    try:
        return load_settings()
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        _fail(EXIT_CONFIG, f"invalid setting {where}: {first['msg']}")
    except ValueError as error:
        _fail(EXIT_CONFIG, str(error))


def cmd_run(args: argparse.Namespace) -> int:
    """Run the stream worker until SIGTERM or SIGINT."""
    settings = _settings()
    from worker import app, audit

    audit.configure(_audit_stream(settings.audit_log), level=settings.log_level)
    try:
        load_policy_book(settings.policy_dir)
    except PolicyError as error:
        _fail(EXIT_CONFIG, f"invalid policy: {error}")
    return app.run(settings)


def cmd_topics(args: argparse.Namespace) -> int:
    """Create the worker's topics where missing and check the ones that exist."""
    import asyncio

    from worker import topics

    settings = _settings()
    try:
        result = asyncio.run(topics.ensure(settings))
    except Exception as error:
        _fail(EXIT_INPUT, f"topics: {type(error).__name__}: {error}")
    for name, state in result.items():
        print(f"{state:8} {name}")
    return 0


def _audit_stream(target: str) -> TextIO:
    if target == "-":
        return sys.stdout
    try:
        return open(target, "a", encoding="utf-8", buffering=1)
    except OSError as error:
        _fail(EXIT_CONFIG, f"cannot open audit log {target}: {error.strerror}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="claims-worker", description="MB2300 claims adjudication worker.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def policy_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--policy-dir", help="policy directory (default: the bundled policies)")
        command.add_argument("--policy-version", help="apply this policy version to every line (what-if)")

    adjudicate = commands.add_parser("adjudicate", help="decide claim events given as JSON lines")
    adjudicate.add_argument("file", nargs="?", default="-", help="JSON-lines file, or - for stdin (default)")
    policy_options(adjudicate)
    adjudicate.set_defaults(handler=cmd_adjudicate)

    explain = commands.add_parser("explain", help="explain a claim's decision for a person")
    explain.add_argument("file", help="a claim event as JSON (or JSON lines)")
    policy_options(explain)
    explain.set_defaults(handler=cmd_explain)

    run = commands.add_parser("run", help="run the stream worker (settings from CLAIMS_* variables)")
    run.set_defaults(handler=cmd_run)

    topics = commands.add_parser("topics", help="manage the worker's topics")
    topics_commands = topics.add_subparsers(dest="topics_command", required=True)
    apply = topics_commands.add_parser("apply", help="create missing topics, check existing ones")
    apply.set_defaults(handler=cmd_topics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        return 0
    except KeyError as error:
        _fail(EXIT_CONFIG, str(error.args[0]) if error.args else "unknown key")


if __name__ == "__main__":
    raise SystemExit(main())
