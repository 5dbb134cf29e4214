"""SIGTERM mid-stream: the worker stops within its grace period, and nothing is lost or emitted twice."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter

import pytest

from tests.builders import many_claims
from tests.integration.conftest import Deployment, consume, decode, wait_until_decided

pytestmark = pytest.mark.integration

TOTAL = 4000
GRACE = 15.0


def test_sigterm_mid_stream_stops_cleanly_and_loses_nothing(deployment: Deployment) -> None:
    deployment.extra_env["CLAIMS_SHUTDOWN_GRACE_SECONDS"] = str(GRACE)
    inputs = many_claims(TOTAL, "TERM")
    deployment.produce(inputs, [json.loads(v)["claim"]["claim_id"].encode() for v in inputs])
    servers = deployment.broker.bootstrap_servers
    first, _, audit = deployment.start_worker(audit_name="audit-1.log")
    asyncio.run(consume(servers, deployment.output_topics, 400, 90))

    started = time.monotonic()
    first.send_signal(signal.SIGTERM)
    status = first.wait(timeout=GRACE + 10)
    took = time.monotonic() - started
    assert status == 0
    assert took < GRACE
    events = [json.loads(line)["event"] for line in audit.read_text().splitlines()]
    assert events[-2:] == ["worker.stopping", "worker.stopped"] or events[-1] == "worker.stopped"
    assert "worker.partitions_revoked" in events

    deployment.start_worker(audit_name="audit-2.log")
    expected = {json.loads(v)["event_id"] for v in inputs}
    wait_until_decided(deployment, expected, 180)
    outputs = decode(asyncio.run(consume(servers, deployment.output_topics, TOTAL, 15, settle=3)))
    counts = Counter(o["source_event_id"] for o in outputs)
    assert set(counts) == expected
    twice = [source for source, n in counts.items() if n > 1]
    assert twice == [], f"{len(twice)} inputs emitted more than once"


def test_shutdown_is_bounded_when_the_broker_never_answers(deployment: Deployment) -> None:
    """A broker that accepts connections and never answers keeps the worker starting; SIGTERM
    must still end the process at once (before Faust starts there is nothing to finish)."""
    import socket
    import subprocess

    from tests.integration.conftest import CLI
    from worker.dev.broker import free_port

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever reads
        env = deployment.env(free_port())
        env["CLAIMS_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{silent.getsockname()[1]}"
        env["CLAIMS_SHUTDOWN_GRACE_SECONDS"] = "3"
        process = subprocess.Popen([CLI, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        time.sleep(5)
        assert process.poll() is None, "the worker should still be trying to start"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
        took = time.monotonic() - started
    assert took < 3 + 3
    assert status in (0, 70, 128 + signal.SIGTERM)
    assert process.stdout is not None
    lines = [json.loads(line) for line in process.stdout.read().decode().splitlines() if line.startswith("{")]
    process.stdout.close()
    assert "worker.stopping" in [line["event"] for line in lines]


def test_a_frozen_broker_cannot_hold_shutdown_past_the_grace_period_and_nothing_is_lost(
    deployment: Deployment,
) -> None:
    """SIGSTOP the broker mid-stream: the batch in hand cannot be delivered, so SIGTERM ends in the
    watchdog's exit (70) within the grace period; after SIGCONT a new worker decides everything."""
    process = deployment.broker.process
    if process is None:
        pytest.skip("only the embedded broker runs as a process this test can freeze")
    deployment.extra_env["CLAIMS_SHUTDOWN_GRACE_SECONDS"] = "4"
    inputs = many_claims(3000, "FROZEN")
    deployment.produce(inputs, [json.loads(v)["claim"]["claim_id"].encode() for v in inputs])
    servers = deployment.broker.bootstrap_servers
    worker, _, _ = deployment.start_worker(audit_name="audit-1.log")
    asyncio.run(consume(servers, deployment.output_topics, 200, 90))
    process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(2)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        status = worker.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGCONT)
    assert took < 4 + 4
    assert status in (0, 70)

    deployment.start_worker(audit_name="audit-2.log")
    expected = {json.loads(v)["event_id"] for v in inputs}
    wait_until_decided(deployment, expected, 180)
