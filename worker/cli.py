"""The `claims-worker` command line.

Exit status: 0 when every input line yielded an output (decisions and dead
letters alike), 2 when the input cannot be opened or the arguments are wrong,
3 when the configuration (policy files, settings) is invalid. Errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TextIO, cast

from claims_contracts.v1 import SourcePosition
from worker import __version__
from worker.adjudication import PolicyBook, PolicyError
from worker.explain import render
from worker.files import FileGroupError, open_private, restrict_new_files, write_private
from worker.heap import settle_heap
from worker.policy_files import bundled_policy_dir, load_code_table, load_policy_book
from worker.processor import DeadLettered, Decided, Processor

EXIT_INPUT = 2
EXIT_CONFIG = 3
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: a service the worker needs cannot be reached
EXIT_IOERR = 74  # EX_IOERR: the output cannot be written (a full disk, a closed stream)


def _fail(code: int, message: str) -> NoReturn:
    if sys.stderr is not None:
        print(f"claims-worker: error: {message}", file=sys.stderr)
    raise SystemExit(code)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        _fail(EXIT_INPUT, f"{self.prog}: {message}")


def _offset(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"an offset is 0 or more, not {value}")
    return value


def _partitions(text: str) -> list[int]:
    try:
        chosen = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of partition numbers: {text!r}") from None
    if any(partition < 0 for partition in chosen):
        raise argparse.ArgumentTypeError(f"partition numbers are 0 or more: {text!r}")
    return sorted(set(chosen))


def _rounds(text: str) -> int:
    value = _offset(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least one round")
    return value


def _stdout() -> BinaryIO:
    if sys.stdout is None:
        _fail(EXIT_IOERR, "standard output is closed")
    return sys.stdout.buffer


def _policies(directory: str | None, version: str | None = None) -> PolicyBook:
    """The policy book, and the pinned version checked against it: one clear line when either is wrong."""
    try:
        policies = load_policy_book(Path(directory) if directory else None)
    except PolicyError as error:
        _fail(EXIT_CONFIG, f"invalid policy: {error}")
    if version is not None:
        try:
            policies.version(version)
        except KeyError as error:
            _fail(EXIT_CONFIG, str(error.args[0]))
    return policies


def _open_input(name: str) -> BinaryIO:
    if name == "-":
        if sys.stdin is None:
            _fail(EXIT_INPUT, "standard input is closed (give a file, or pipe the claims in)")
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
    # One output per input line: a repeated input is decided (identically) again, not skipped; an
    # event id repeated with other content is an event_id_conflict dead letter, as in the stream.
    policies = _policies(args.policy_dir, args.policy_version)
    processor = Processor(policies, pinned_version=args.policy_version, skip_redelivered=False)
    stream = _open_input(args.file)
    out = _stdout()
    try:
        for number, raw in _lines(stream):
            result = processor.process(raw, SourcePosition(file_line=number))
            if isinstance(result, Decided):
                out.write(result.payload)
            elif isinstance(result, DeadLettered):
                out.write(result.record.model_dump_json().encode())
            else:  # skip_redelivered=False: a repeated input is decided again, never skipped
                continue
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
    policies = _policies(args.policy_dir, args.policy_version)
    processor = Processor(policies, pinned_version=args.policy_version, skip_redelivered=False)
    codes = load_code_table(Path(args.policy_dir) if args.policy_dir else bundled_policy_dir())
    _stdout()
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


def _connection(settings: Any) -> Any:
    from worker.connection import ConnectionSettingsError, KafkaConnection

    try:
        return KafkaConnection.from_settings(settings)
    except ConnectionSettingsError as error:
        _fail(EXIT_CONFIG, str(error))


def cmd_run(args: argparse.Namespace) -> int:
    """Run the stream worker until SIGTERM or SIGINT."""
    settings = _settings()
    _connection(settings)  # a CA file that cannot be read is one clear line, before anything starts
    from worker import audit
    from worker.stream import app

    restrict_new_files(settings.file_group)
    audit.configure(_audit_stream(settings.audit_log, settings.file_group), level=settings.log_level)
    try:
        policies = load_policy_book(settings.policy_dir)
    except PolicyError as error:
        _fail(EXIT_CONFIG, f"invalid policy: {error}")
    import asyncio

    from worker.stream.topics import check_brokers

    def stop_before_start(signum: int, _frame: Any) -> None:
        # Faust is not running yet: nothing to finish or commit, so stop at once.
        audit.lifecycle("worker.stopping", error="signal before start")
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop_before_start)
    try:
        asyncio.run(check_brokers(settings))
    except ConnectionError as error:
        audit.lifecycle("worker.stopped", error=str(error))
        _fail(EXIT_UNAVAILABLE, str(error))
    finally:
        signal.signal(signal.SIGTERM, previous)
    return app.run(settings, policies)


def cmd_topics(args: argparse.Namespace) -> int:
    """Create the worker's topics where missing and check the ones that exist."""
    import asyncio

    from worker.stream import topics

    settings = _settings()
    _connection(settings)
    try:
        result = asyncio.run(topics.ensure(settings))
    except Exception as error:  # noqa: BLE001 - one clear line, whatever the admin client raised
        _fail(EXIT_INPUT, f"topics: {type(error).__name__}: {error}")
    for name, state in result.items():
        print(f"{state:8} {name}")
    return 0


def _parse_time(text: str) -> int:
    from datetime import datetime

    from worker.replay.run import to_ms

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        _fail(EXIT_INPUT, f"not an ISO 8601 time: {text!r}")
    if moment.tzinfo is None:
        _fail(EXIT_INPUT, f"give the time with a zone (e.g. {text}Z): {text!r}")
    return to_ms(moment)


def _check_range(plan: Any) -> None:
    """Refuse a range that holds nothing by construction, with the reason."""
    import time

    if plan.start_offset is not None and plan.end_offset is not None and plan.end_offset <= plan.start_offset:
        _fail(EXIT_INPUT, f"--end-offset {plan.end_offset} is not after --start-offset {plan.start_offset}")
    if plan.start_time_ms is not None and plan.end_time_ms is not None and plan.end_time_ms < plan.start_time_ms:
        _fail(EXIT_INPUT, "--end-time is before --start-time")
    if plan.start_time_ms is not None and plan.start_time_ms > time.time() * 1000:
        _fail(EXIT_INPUT, "--start-time is in the future: no record can be at or after it yet")


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-adjudicate a range of a claims topic (or an export) into a topic or file, and compare."""
    import asyncio
    import json

    from worker.replay.comparison import compare, load_recorded, markdown
    from worker.replay.run import Replayer, ReplayPlan, new_run_id

    settings = _settings()
    restrict_new_files(settings.file_group)
    connection = _connection(settings)
    if args.resume:
        state_path = Path(args.resume)
        try:
            plan = ReplayPlan.load(state_path)
        except (OSError, ValueError, TypeError) as error:
            _fail(EXIT_INPUT, f"cannot resume from {state_path}: {error}")
        if plan.finished:
            print(f"replay {plan.run_id} had finished; nothing to resume", file=sys.stderr)
            return 0
    else:
        if args.from_file and (args.start_time or args.end_time or args.partitions):
            _fail(EXIT_INPUT, "--start-time, --end-time and --partitions apply to a topic, not --from-file")
        run_id = args.run_id or new_run_id()
        plan = ReplayPlan(
            run_id=run_id,
            bootstrap_servers=settings.bootstrap_servers,
            source_topic=None if args.from_file else (args.topic or settings.input_topic),
            source_file=args.from_file,
            partitions=args.partitions,
            start_offset=args.start_offset,
            end_offset=args.end_offset,
            start_time_ms=_parse_time(args.start_time) if args.start_time else None,
            end_time_ms=_parse_time(args.end_time) if args.end_time else None,
            policy_version=args.policy_version,
            policy_dir=args.policy_dir,
            output_topic=None if args.output_file else (args.output_topic or f"claims.replay.{run_id}"),
            output_file=args.output_file,
            history_from_offset=int(args.history_from) if args.history_from and args.history_from.isdigit() else None,
            history_from_time_ms=(
                _parse_time(args.history_from) if args.history_from and not args.history_from.isdigit() else None
            ),
        )
        if plan.history_from_time_ms is not None and args.from_file:
            _fail(EXIT_INPUT, "--history-from takes a line number with --from-file")
        _check_range(plan)
        report_dir = Path(args.report_dir or f"replay-{run_id}")
        report_dir.mkdir(parents=True, exist_ok=True)
        state_path = report_dir / "state.json"
    policies = _policies(plan.policy_dir, plan.policy_version)
    from worker.stream.topics import max_message_bytes

    # Dead letters sized as the worker sizes them for its dead-letter topic (a file takes any size).
    limit = None if plan.output_file else max_message_bytes("dead_letter")
    replayer = Replayer(
        plan,
        policies,
        connection=connection,
        dead_letter_max_bytes=limit,
        state_path=state_path,
        file_group=settings.file_group,
    )
    settle_heap()
    try:
        result = asyncio.run(replayer.run())
    except (OSError, RuntimeError) as error:
        _fail(EXIT_INPUT, f"replay: {error}")
    except Exception as error:  # noqa: BLE001 - broker errors become one line, not a traceback
        _fail(EXIT_INPUT, f"replay: {type(error).__name__}: {error}")
    where = plan.output_file or plan.output_topic
    print(
        f"replay {plan.run_id}: {result.processed} events read, {result.outputs} outputs "
        f"({result.dead_letters} dead letters) to {where}; seek: {result.seek_method}",
        file=sys.stderr,
    )
    if result.history_warmed is None:
        print(
            "history: none before the range: duplicates and supersessions of claims decided before it are not"
            " seen (warm it with --history-from)",
            file=sys.stderr,
        )
    else:
        print(f"history: warmed from {result.history_warmed} events before the range", file=sys.stderr)
    if result.stopped_early:
        print(
            f"stopped at {plan.next_offsets}; resume with: claims-worker replay --resume {state_path}", file=sys.stderr
        )
        return 130
    if args.compare_with:
        try:
            recorded = load_recorded(args.compare_with, connection)
        except (OSError, RuntimeError, ValueError) as error:
            _fail(EXIT_INPUT, f"compare: {error}")
        report = {"run_id": plan.run_id, "policy_version": plan.policy_version, **compare(result.summaries, recorded)}
        write_private(state_path.parent / "report.json", json.dumps(report, indent=2) + "\n", group=settings.file_group)
        summary = markdown(report, title=f"Replay {plan.run_id} compared with {', '.join(args.compare_with)}")
        write_private(state_path.parent / "report.md", summary, group=settings.file_group)
        sys.stdout.write(summary)
    return 0


def cmd_samples_publish(args: argparse.Namespace) -> int:
    """Publish the bundled sample claims to the input topic (for demos and smoke tests)."""
    import asyncio

    from worker.samples import publish, sample_claims

    settings = _settings()
    _connection(settings)
    try:
        sent = asyncio.run(publish(settings, sample_claims(), rounds=args.repeat))
    except Exception as error:  # noqa: BLE001 - one clear line, whatever the client raised
        _fail(EXIT_INPUT, f"samples: {type(error).__name__}: {error}")
    print(f"published {sent} sample claim events to {settings.input_topic}", file=sys.stderr)
    return 0


def cmd_review_keys_new(args: argparse.Namespace) -> int:
    """Write a new review signing key pair: the private key 0600, the public one named by its key id."""
    from worker.signatures import PRIVATE_KEY_FILE, new_key_pair

    directory = Path(args.directory)
    try:
        kid = new_key_pair(directory)
    except FileExistsError:
        _fail(EXIT_CONFIG, f"review keys new: {directory / PRIVATE_KEY_FILE} exists; it is never overwritten")
    except OSError as error:
        _fail(EXIT_CONFIG, f"review keys new: {error}")
    print(
        f"key {kid}: private {directory / PRIVATE_KEY_FILE} (0600), public {directory / kid}.pub.pem", file=sys.stderr
    )
    print("give the workbench CLAIMS_REVIEW_SIGNING_KEY, the workers CLAIMS_REVIEW_VERIFY_KEYS", file=sys.stderr)
    return 0


def cmd_review_publish(args: argparse.Namespace) -> int:
    """Sign review decisions from JSON files (one review, or a list) and publish them to the reviews topic.

    Every review is validated against the contract first; nothing is sent unless all are valid.
    """
    import asyncio

    from pydantic import ValidationError

    from claims_contracts.v1 import ReviewDecisionEvent
    from worker.signatures import SIGNATURE_HEADER, load_signing_key

    settings = _settings()
    if settings.review_signing_key is None:
        _fail(EXIT_CONFIG, "review publish: CLAIMS_REVIEW_SIGNING_KEY is not set")
    try:
        key = load_signing_key(settings.review_signing_key)
    except (OSError, ValueError) as error:
        _fail(EXIT_CONFIG, f"review publish: {error}")
    reviews: list[ReviewDecisionEvent] = []
    for name in args.files:
        try:
            document = json.loads(Path(name).read_bytes())
        except (OSError, ValueError) as error:
            _fail(EXIT_INPUT, f"review publish: {name}: {error}")
        for index, item in enumerate(document if isinstance(document, list) else [document]):
            try:
                reviews.append(ReviewDecisionEvent.model_validate(item))
            except ValidationError as error:
                first = error.errors(include_input=False)[0]
                where = ".".join(str(part) for part in first["loc"])
                _fail(EXIT_INPUT, f"review publish: {name} review {index}: {where}: {first['msg']}")

    connection = _connection(settings)

    async def send() -> None:
        producer = connection.producer(acks="all")
        await producer.start()
        try:
            for review in reviews:
                value = review.model_dump_json().encode()
                headers = [(SIGNATURE_HEADER, key.sign(value))]
                await producer.send_and_wait(
                    settings.reviews_topic, value, key=review.member_id.encode(), headers=headers
                )
        finally:
            await producer.stop()

    try:
        asyncio.run(send())
    except Exception as error:  # noqa: BLE001 - one clear line, whatever the client raised
        _fail(EXIT_UNAVAILABLE, f"review publish: {type(error).__name__}: {error}")
    print(f"signed (key {key.kid}) and published {len(reviews)} reviews to {settings.reviews_topic}", file=sys.stderr)
    return 0


def cmd_review_serve(args: argparse.Namespace) -> int:
    """Serve the reviewer's workbench: the open pends, claim pages, and the review form."""
    import asyncio
    import contextlib
    import ipaddress
    import ssl

    from worker.review.identity import Identity, read_secret, read_tokens
    from worker.review.projection import Projection
    from worker.review.web import Workbench, serve
    from worker.signatures import load_signing_key

    settings = _settings()
    _connection(settings)
    if settings.review_signing_key is None:
        _fail(EXIT_CONFIG, "review serve: CLAIMS_REVIEW_SIGNING_KEY is not set: the workbench signs every review")
    try:
        signing = load_signing_key(settings.review_signing_key)
        tokens = read_tokens(Path(args.tokens)) if args.tokens else {}
        secret = read_secret(Path(args.proxy_secret_file)) if args.proxy_secret_file else None
        identity = Identity(
            trusted_header=args.trusted_header, roles_header=args.roles_header, proxy_secret=secret, tokens=tokens
        )
    except (OSError, ValueError) as error:
        _fail(EXIT_CONFIG, f"review serve: {error}")
    if args.trusted_header and secret is None and not _loopback(args.host, ipaddress):
        _fail(
            EXIT_CONFIG,
            f"review serve: --trusted-header on {args.host} (not loopback) needs --proxy-secret-file: any client"
            " that reaches the port could otherwise name any reviewer",
        )
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as error:
            _fail(EXIT_CONFIG, f"review serve: TLS: {error}")
    policies = _policies(args.policy_dir, None)
    codes = load_code_table(Path(args.policy_dir) if args.policy_dir else bundled_policy_dir())
    with Projection(Path(args.db)) as projection:
        if args.rebuild:
            projection.rebuild()
        bench = Workbench(settings, projection, identity, policies, codes, signing=signing)
        scheme = "https" if tls is not None else "http"

        def ready(port: int) -> None:
            print(f"workbench on {scheme}://{args.host}:{port}/ (projection {args.db})", file=sys.stderr, flush=True)

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(bench, args.host, args.port, ready, tls=tls))
    return 0


def _loopback(host: str, ipaddress: Any) -> bool:
    if host == "localhost":
        return True
    try:
        return bool(ipaddress.ip_address(host).is_loopback)
    except ValueError:
        return False


def _audit_stream(target: str, group: str | None = None) -> TextIO:
    if target == "-":
        return sys.stdout
    try:
        stream = cast(TextIO, open_private(target, "a", group=group, encoding="utf-8", buffering=1))
    except OSError as error:
        _fail(EXIT_CONFIG, f"cannot open audit log {target}: {error.strerror}")
    except FileGroupError as error:
        _fail(EXIT_CONFIG, str(error))
    return stream


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="claims-worker", description="MB2300 claims adjudication worker.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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

    replay = commands.add_parser("replay", help="re-adjudicate a range of history into a topic or file")
    source = replay.add_mutually_exclusive_group()
    source.add_argument("--topic", help="claims topic to read (default: the input topic setting)")
    source.add_argument("--from-file", help="read a JSON-lines export of claim events instead of a topic")
    replay.add_argument("--partitions", type=_partitions, help="comma-separated partitions (default: all)")
    start = replay.add_mutually_exclusive_group()
    start.add_argument("--start-offset", type=_offset, help="first offset (line, for a file) to read")
    start.add_argument("--start-time", help="first record time, ISO 8601 with zone")
    end = replay.add_mutually_exclusive_group()
    end.add_argument("--end-offset", type=_offset, help="stop before this offset (default: end offsets at start)")
    end.add_argument("--end-time", help="last record time, ISO 8601 with zone (inclusive)")
    output = replay.add_mutually_exclusive_group()
    output.add_argument("--output-topic", help="topic for the outputs (default: claims.replay.<run-id>)")
    output.add_argument("--output-file", help="JSON-lines file for the outputs")
    replay.add_argument(
        "--history-from",
        help=(
            "warm the claim history from this offset (line, for a file) or time (ISO 8601) up to the range,"
            " so claims before it count for duplicates and supersessions"
        ),
    )
    replay.add_argument("--compare-with", action="append", help="recorded outputs: a topic or a file (repeatable)")
    replay.add_argument("--report-dir", help="where state.json and the reports go (default: replay-<run-id>)")
    replay.add_argument("--run-id", help="name of this run (default: time and a random suffix)")
    replay.add_argument("--resume", help="resume a stopped replay from its state.json")
    policy_options(replay)
    replay.set_defaults(handler=cmd_replay)

    topics = commands.add_parser("topics", help="manage the worker's topics")
    topics_commands = topics.add_subparsers(dest="topics_command", required=True)
    apply = topics_commands.add_parser("apply", help="create missing topics, check existing ones")
    apply.set_defaults(handler=cmd_topics)

    review = commands.add_parser("review", help="the reviewer's workbench")
    review_commands = review.add_subparsers(dest="review_command", required=True)
    serve = review_commands.add_parser("serve", help="serve the open pends, claim pages and the review form")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8088)
    serve.add_argument("--db", default="claims-review.sqlite3", help="the projection (SQLite, created 0600)")
    serve.add_argument("--rebuild", action="store_true", help="throw the projection away and read the topics again")
    who = serve.add_mutually_exclusive_group(required=True)
    who.add_argument("--trusted-header", help="header an authenticating proxy sets to the reviewer's id")
    who.add_argument("--tokens", help="file (mode 0600) of 'reviewer-id token role[,role]' lines, for local sign-in")
    serve.add_argument(
        "--roles-header", default="X-Forwarded-Roles", help="with --trusted-header: the header of the reviewer's roles"
    )
    serve.add_argument(
        "--proxy-secret-file",
        help="with --trusted-header: file (0600) of the secret the proxy sends in X-Workbench-Proxy-Secret;"
        " required to listen beyond loopback",
    )
    serve.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM); cookies are then Secure")
    serve.add_argument("--tls-key", help="the certificate's private key (PEM)")
    policy_options(serve)
    serve.set_defaults(handler=cmd_review_serve)
    keys = review_commands.add_parser("keys", help="review signing keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new_keys = keys_commands.add_parser("new", help="write a new signing key pair into a folder")
    new_keys.add_argument("directory", help="folder for review-signing.pem (0600) and <key id>.pub.pem")
    new_keys.set_defaults(handler=cmd_review_keys_new)
    publish_reviews = review_commands.add_parser("publish", help="sign review decisions from JSON files and send them")
    publish_reviews.add_argument("files", nargs="+", help="JSON files: a review decision each, or a list of them")
    publish_reviews.set_defaults(handler=cmd_review_publish)

    samples = commands.add_parser("samples", help="the bundled sample claims")
    samples_commands = samples.add_subparsers(dest="samples_command", required=True)
    publish = samples_commands.add_parser("publish", help="publish them to the input topic")
    publish.add_argument("--repeat", type=_rounds, default=1, help="rounds to publish (new claim ids each round)")
    publish.set_defaults(handler=cmd_samples_publish)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    restrict_new_files()  # outputs, reports and logs carry PHI: nothing this process creates is world-readable
    if args.command != "run":
        # One-shot commands answer with one line of their own: the Kafka client's log records
        # (a refused connection, retried) would otherwise reach stderr through logging's
        # last-resort handler. The stream worker's logging is set up by the audit module.
        logging.getLogger().addHandler(logging.NullHandler())
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        return 0
    except OSError as error:
        # Writing the outputs failed (a full disk, a closed or broken output): one line, not a traceback.
        where = f" {error.filename}" if error.filename else ""
        _fail(EXIT_IOERR, f"cannot write{where}: {error.strerror or error}")


if __name__ == "__main__":
    raise SystemExit(main())
